"""`/models`: server ids told only by `Location`, offset paging with `Link` headers.

POST answers 201 with an empty body and a relative `Location: /models/<id>`;
lists are a bare JSON array plus an absolute `Link: <...>; rel="next"` while more
remain; PATCH takes an RFC 7396 merge patch.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .resources import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MERGE_PATCH,
    Rendered,
    create,
    etag,
    fetch,
    int_arg,
    item_id,
    item_path,
    item_response,
    json_body,
    json_response,
    list_slice,
    new_id,
    patch,
    query_with,
    remove,
    replace,
)
from .store import Asset

KIND = "models"
PAGING = ("offset", "limit")

blueprint = Blueprint(KIND, __name__)


@blueprint.post("/models")
def model_create() -> Response:
    # The server always picks model ids; a body `id` (say, from a copied
    # model) is ignored like the other server-kept fields.
    return create(KIND, new_id(), json_body(), render_created)


def render_created(asset: Asset) -> Rendered:
    return 201, {"Location": item_path(KIND, asset["id"]), "ETag": etag(asset)}, ""


@blueprint.get("/models")
def model_list() -> Response:
    offset = int_arg("offset", 0, 0)
    limit = int_arg("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    items, total = list_slice(KIND, PAGING, offset, limit)

    response = json_response(items)
    response.headers["X-Total-Count"] = str(total)
    if offset + len(items) < total:
        query = query_with(offset=offset + len(items), limit=limit)
        url = f"{request.host_url.rstrip('/')}/models?{query}"
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response


@blueprint.get("/models/<raw_id>")
def model_get(raw_id: str) -> Response:
    return item_response(fetch(KIND, item_id(raw_id)))


@blueprint.put("/models/<raw_id>")
def model_replace(raw_id: str) -> Response:
    return item_response(replace(KIND, item_id(raw_id), json_body()))


@blueprint.patch("/models/<raw_id>")
def model_patch(raw_id: str) -> Response:
    return item_response(patch(KIND, item_id(raw_id), json_body(MERGE_PATCH)))


@blueprint.delete("/models/<raw_id>")
def model_delete(raw_id: str) -> Response:
    return remove(KIND, item_id(raw_id))
