"""`/datasets`: client-chosen or server ids, the asset in every answer, page paging.

POST answers 201 with the stored asset and an absolute `Location`; lists are
`{"items", "page", "size", "total", "next"}` with `next` a relative URL or null.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .problems import Problem
from .resources import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Rendered,
    check_id,
    create,
    dumps,
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
    query_with,
    remove,
    replace,
)
from .store import Asset

KIND = "datasets"
PAGING = ("page", "size")

blueprint = Blueprint(KIND, __name__)


@blueprint.post("/datasets")
def dataset_create() -> Response:
    fields = json_body()
    asset_id = fields.get("id")
    if asset_id is None:
        asset_id = new_id()
    elif not isinstance(asset_id, str):
        raise Problem(400, "a dataset id must be a string", slug="bad-id")
    return create(KIND, check_id(asset_id), fields, render_created)


def render_created(asset: Asset) -> Rendered:
    location = request.host_url.rstrip("/") + item_path(KIND, asset["id"])
    headers = {
        "Location": location,
        "ETag": etag(asset),
        "Content-Type": "application/json",
    }
    return 201, headers, dumps(asset)


@blueprint.get("/datasets")
def dataset_list() -> Response:
    page = int_arg("page", 1, 1)
    size = int_arg("size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    items, total = list_slice(KIND, PAGING, (page - 1) * size, size)

    more = page * size < total
    next_url = f"/datasets?{query_with(page=page + 1, size=size)}" if more else None
    body = {
        "items": items,
        "page": page,
        "size": size,
        "total": total,
        "next": next_url,
    }
    return json_response(body)


@blueprint.get("/datasets/<raw_id>")
def dataset_get(raw_id: str) -> Response:
    return item_response(fetch(KIND, item_id(raw_id)))


@blueprint.put("/datasets/<raw_id>")
def dataset_replace(raw_id: str) -> Response:
    return item_response(replace(KIND, item_id(raw_id), json_body()))


@blueprint.delete("/datasets/<raw_id>")
def dataset_delete(raw_id: str) -> Response:
    return remove(KIND, item_id(raw_id))
