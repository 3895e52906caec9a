"""What both asset kinds share: ids, JSON bodies, ETags, stamps, write flows.

The per-kind modules (`datasets`, `models`) decide the wire conventions (status,
body, Location, paging); this module does the work behind them.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote, urlencode

from flask import Response, current_app, g, request
from werkzeug.datastructures import MultiDict

from . import store
from .auth import Principal
from .problems import Problem
from .store import Asset, IdTaken, Replay, Store

SERVER_FIELDS = ("id", "version", "created_by", "created_at", "updated_at")
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
MAX_ID_LENGTH = 512
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

# (status, headers, body) of a create response, kept for Idempotency-Key replays.
Rendered = tuple[int, dict[str, str], str]


def current_store() -> Store:
    return current_app.extensions["asset_api"].store


def caller() -> Principal:
    return g.principal


def new_id() -> str:
    return str(uuid.uuid4())


def check_id(asset_id: str) -> str:
    if not asset_id or len(asset_id) > MAX_ID_LENGTH:
        raise Problem(400, f"an id is 1 to {MAX_ID_LENGTH} characters", slug="bad-id")
    return asset_id


def item_id(raw: str) -> str:
    """The id from its URL segment, which the router saw still percent-encoded."""
    try:
        return check_id(unquote(raw, errors="strict"))
    except UnicodeDecodeError as exc:
        raise Problem(
            400, "the id is not percent-encoded UTF-8", slug="bad-id"
        ) from exc


def item_path(kind: str, asset_id: str) -> str:
    return f"/{kind}/{quote(asset_id, safe='')}"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status=status, mimetype=JSON)


def json_body(media_type: str = JSON) -> dict[str, Any]:
    """The request body as a JSON object, or a 415/400 problem."""
    if request.mimetype != media_type:
        raise Problem(
            415, f"send the body as {media_type}", headers=accept_header(media_type)
        )
    try:
        value = json.loads(request.get_data(), parse_constant=reject_constant)
    except ValueError as exc:
        raise Problem(400, "the body is not valid JSON", slug="bad-json") from exc
    if not isinstance(value, dict):
        raise Problem(400, "the body must be a JSON object", slug="bad-json")
    return value


def accept_header(media_type: str) -> dict[str, str]:
    return {"Accept-Patch": media_type} if media_type == MERGE_PATCH else {}


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def etag(asset: Asset) -> str:
    """Strong ETag: the version, plus a digest so a re-created id never repeats one."""
    canonical = json.dumps(asset, sort_keys=True).encode()
    return f'"{asset["version"]}-{hashlib.sha256(canonical).hexdigest()[:16]}"'


def check_if_match(asset: Asset) -> None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return
    # Strong comparison (RFC 9110 13.1.1): a weak W/"..." tag never matches.
    if etag(asset) not in (tag.strip() for tag in header.split(",")):
        raise Problem(
            412,
            "the asset changed since it was read; fetch it again",
            headers={"ETag": etag(asset)},
        )


def check_body_id(fields: dict[str, Any], asset_id: str) -> None:
    if "id" in fields and fields["id"] != asset_id:
        raise Problem(400, "the body's id differs from the URL's; ids never change")


def now() -> str:
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def user_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in SERVER_FIELDS}


def new_asset(asset_id: str, fields: dict[str, Any], who: Principal) -> Asset:
    stamp = now()
    return {
        "id": asset_id,
        **user_fields(fields),
        "version": 1,
        "created_by": who.username,
        "created_at": stamp,
        "updated_at": stamp,
    }


def revised(old: Asset, fields: dict[str, Any]) -> Asset:
    return {
        "id": old["id"],
        **user_fields(fields),
        "version": old["version"] + 1,
        "created_by": old["created_by"],
        "created_at": old["created_at"],
        "updated_at": now(),
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def item_response(asset: Asset) -> Response:
    response = json_response(asset)
    response.headers["ETag"] = etag(asset)
    return response


def fetch(kind: str, asset_id: str) -> Asset:
    with current_store().read() as conn:
        return require(conn, kind, asset_id)


def require(conn: Any, kind: str, asset_id: str) -> Asset:
    asset = store.get(conn, kind, asset_id)
    if asset is None:
        raise Problem(404, f"there is no {kind} asset with id {asset_id!r}")
    return asset


def create(
    kind: str,
    asset_id: str,
    fields: dict[str, Any],
    render: Callable[[Asset], Rendered],
) -> Response:
    """Store a new asset, or replay the answer to an Idempotency-Key seen before."""
    who, key = caller(), idempotency_key()
    fingerprint = fingerprint_of(fields)

    # One write transaction: two racing POSTs with one key create one asset.
    with current_store().write() as conn:
        replay = store.find_replay(conn, who.subject, kind, key) if key else None
        if replay:
            return replay_response(replay, fingerprint)

        asset = new_asset(asset_id, fields, who)
        try:
            store.insert(conn, kind, asset)
        except IdTaken as exc:
            raise Problem(409, f"a {kind} asset with id {asset_id!r} exists") from exc

        status, headers, body = render(asset)
        if key:
            saved = Replay(fingerprint, status, headers, body)
            store.save_replay(conn, who.subject, kind, key, saved)
    return make_response(status, headers, body)


def fingerprint_of(fields: dict[str, Any]) -> str:
    """Tells a retried POST from a different one reusing its Idempotency-Key."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise Problem(400, "an Idempotency-Key is 1 to 255 characters")
    return key


def replay_response(replay: Replay, fingerprint: str) -> Response:
    if replay.fingerprint != fingerprint:
        raise Problem(
            422,
            "this Idempotency-Key was used with another body; use a new key",
            slug="idempotency-key-reused",
        )
    response = make_response(replay.status, replay.headers, replay.body)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def make_response(status: int, headers: dict[str, str], body: str) -> Response:
    response = Response(body, status=status, headers=headers)
    if not body and "Content-Type" not in headers:
        del response.headers["Content-Type"]
    return response


def replace(kind: str, asset_id: str, fields: dict[str, Any]) -> Asset:
    check_body_id(fields, asset_id)
    with current_store().write() as conn:
        old = require(conn, kind, asset_id)
        check_if_match(old)
        asset = revised(old, fields)
        store.update(conn, kind, asset)
    return asset


def patch(kind: str, asset_id: str, changes: dict[str, Any]) -> Asset:
    check_body_id(changes, asset_id)
    with current_store().write() as conn:
        old = require(conn, kind, asset_id)
        check_if_match(old)
        asset = revised(old, merge_patch(old, changes))
        store.update(conn, kind, asset)
    return asset


def remove(kind: str, asset_id: str) -> Response:
    with current_store().write() as conn:
        check_if_match(require(conn, kind, asset_id))
        store.delete(conn, kind, asset_id)
    return Response(status=204)


def int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """A paging parameter; values past `maximum` are clamped, not refused."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or int(raw) < minimum:
        raise Problem(400, f"{name} must be a whole number from {minimum}")
    return min(int(raw), maximum) if maximum else int(raw)


def list_slice(
    kind: str, paging: Sequence[str], offset: int, limit: int
) -> tuple[list[Asset], int]:
    """Matching assets in creation order; every non-paging parameter filters."""
    filters = {n: request.args.getlist(n) for n in request.args if n not in paging}
    with current_store().read() as conn:
        return store.page(conn, kind, filters, offset, limit)


def query_with(**changes: int) -> str:
    """This request's query string with some parameters replaced (filters kept)."""
    args = MultiDict(request.args)
    for name, value in changes.items():
        args.setlist(name, [str(value)])
    return urlencode(list(args.items(multi=True)))
