"""`AssetClient`: create, get, edit, delete and list the assets of one registry type.

It takes an already authorized session (tokens are `assetctl.auth`'s business), builds
URLs from the registry entry with ids quoted as one path segment, retries what is safe
to retry, and turns error answers into `AssetctlError`s. It prints nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from assetctl.assets import paging, problems
from assetctl.assets.retry import (
    RetriesExhausted,
    RetryPolicy,
    network_error,
    send_with_retry,
)
from assetctl.errors import ApiError, Conflict, InputError, NetworkError, NotFound
from assetctl.registry import AssetType

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Ids that stay one segment when quoted but that URL resolution turns into another path
# (`/things/..` is `/`, `/things/` is the collection): never sent.
UNUSABLE_IDS = frozenset({"", ".", ".."})


@dataclass(frozen=True)
class Asset:
    """One asset as the API returned it; `etag` when the API sent one."""

    id: str
    body: Mapping[str, Any] | None
    etag: str | None = None
    status: int = 200


@dataclass(frozen=True)
class PlannedRequest:
    """A request as `--dry-run` shows it instead of sending it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Any = None


def check_id(asset_id: object, where: str) -> str:
    """The id as text, or an `InputError` for one that would reach another path."""
    text = str(asset_id)
    if text in UNUSABLE_IDS:
        raise InputError(
            f"{where}: {text!r} cannot be an asset id "
            "(empty, '.' and '..' would reach another path)",
            hint="name the asset by its real id",
        )
    return text


def quote_id(asset_id: object) -> str:
    """An id as exactly one path segment: `a/../b` becomes `a%2F..%2Fb`.

    Ids that no quoting keeps on the item path are refused (`check_id`).
    """
    return quote(check_id(asset_id, "id"), safe="")


class AssetClient:
    """Talks to the endpoints of one asset type through one shared session."""

    def __init__(
        self,
        session: requests.Session,
        asset_type: AssetType,
        api_url: str,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.session = session
        self.type = asset_type
        self.base = (asset_type.api_url or api_url).rstrip("/") + "/"
        self.retry = retry or RetryPolicy()

    # URLs and plans

    def collection_url(self) -> str:
        return urljoin(self.base, self.type.collection.lstrip("/"))

    def item_url(self, asset_id: object) -> str:
        return urljoin(self.base, self.type.item_path(quote_id(asset_id)).lstrip("/"))

    def plan_create(self, body: Mapping[str, Any], key: str) -> PlannedRequest:
        headers = {**self.type.headers, IDEMPOTENCY_HEADER: key}
        return PlannedRequest(
            "POST", self._with_params(self.collection_url()), headers, body
        )

    def plan_edit(
        self, asset_id: object, body: Mapping[str, Any], etag: str | None = None
    ) -> PlannedRequest:
        headers = dict(self.type.headers)
        method = "PUT"
        if self.type.edit == "merge-patch":
            method, headers["Content-Type"] = "PATCH", MERGE_PATCH
        if etag:
            headers["If-Match"] = etag
        url = self._with_params(self.item_url(asset_id))
        return PlannedRequest(method, url, headers, body)

    def plan_delete(self, asset_id: object, etag: str | None = None) -> PlannedRequest:
        headers = {**self.type.headers, **({"If-Match": etag} if etag else {})}
        return PlannedRequest(
            "DELETE", self._with_params(self.item_url(asset_id)), headers
        )

    # Requests

    def create(self, body: Mapping[str, Any], *, key: str) -> Asset:
        """POST with an idempotency key; a lost answer is looked up before resending."""
        plan = self.plan_create(body, key)
        known_id = body.get(self.type.id_field)
        lookup = (lambda: self._lookup(known_id)) if known_id is not None else None
        response = self._send(plan, on_lost=lookup)
        if response.request.method == "GET":
            found = self._asset(response, str(known_id), need_body=False)
            if not holds(found.body, body):
                # Not our lost create: someone else's asset already had this id.
                raise Conflict(
                    f"{_what(plan)}: asset {known_id} already exists with other "
                    "content (the create's answer was lost, so this was checked)",
                    status=409,
                    hint="edit it instead, or choose another id",
                )
            log.info("create of %s had reached the API before; not resending", known_id)
            return found
        self._raise_for(response, plan)
        return self._asset(response, self._created_id(response, plan), need_body=False)

    def get(self, asset_id: object) -> Asset:
        plan = PlannedRequest("GET", self._with_params(self.item_url(asset_id)), {})
        response = self._send(plan)
        self._raise_for(response, plan)
        return self._asset(response, str(asset_id), plan=plan)

    def find(self, asset_id: object) -> Asset | None:
        try:
            return self.get(asset_id)
        except NotFound:
            return None

    def edit(
        self, asset_id: object, body: Mapping[str, Any], *, etag: str | None = None
    ) -> Asset:
        plan = self.plan_edit(asset_id, body, etag)
        response = self._send(plan)
        self._raise_for(response, plan)
        return self._asset(response, str(asset_id), need_body=False)

    def delete(self, asset_id: object, *, etag: str | None = None) -> None:
        plan = self.plan_delete(asset_id, etag)
        lost: list[bool] = []

        def note_lost() -> None:
            lost.append(True)  # and resend: DELETE is idempotent

        response = self._send(plan, on_lost=note_lost)
        if response.status_code == 404 and lost:
            # The first DELETE did its work; only its answer went missing.
            log.info("delete of %s had reached the API before", asset_id)
            return
        self._raise_for(response, plan)

    def list(
        self, filters: Mapping[str, str] | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every asset, page by page as the pages arrive; `limit` stops early."""
        params = {**self.type.params, **(filters or {})}
        items = paging.iterate_items(
            self._fetch_page, self.type.paging, self.collection_url(), params
        )
        return islice(items, limit) if limit is not None else items

    def raw(self, method: str, url: str, body: bytes | None, headers: Mapping) -> Any:
        """One request as given, retried only when idempotent (the `api` command)."""
        plan = PlannedRequest(method.upper(), url, dict(headers), body)
        idempotent = plan.method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        retry = self.retry if idempotent else RetryPolicy(attempts=1)
        return self._send(plan, retry=retry, params=False)

    # Plumbing

    def _fetch_page(self, url: str, params: Mapping[str, Any] | None) -> Any:
        plan = PlannedRequest("GET", url, dict(self.type.headers))
        response = self._send(plan, query=params)
        self._raise_for(response, plan)
        return response

    def _lookup(self, asset_id: object) -> requests.Response | None:
        try:
            response = self.session.get(
                self.item_url(asset_id), params=self.type.params
            )
        except requests.RequestException:
            return None
        return response if response.status_code == 200 else None

    def _send(
        self,
        plan: PlannedRequest,
        *,
        query: Mapping[str, Any] | None = None,
        on_lost: Any = None,
        retry: RetryPolicy | None = None,
        params: bool = True,
    ) -> requests.Response:
        headers = {**self.type.headers, **plan.headers}
        data = plan.body
        if isinstance(data, Mapping):
            data = json.dumps(data).encode()
            headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "application/json")

        def send() -> requests.Response:
            return self.session.request(
                plan.method, plan.url, params=query, data=data, headers=headers
            )

        try:
            return send_with_retry(send, retry or self.retry, on_lost=on_lost)
        except RetriesExhausted as exc:
            raise network_error(exc, plan.url) from exc
        except requests.TooManyRedirects as exc:
            raise ApiError(
                f"{_what(plan)}: the API redirected too often (a redirect loop?)",
                hint="check the API URL",
            ) from exc
        except requests.RequestException as exc:  # a body cut short, a bad URL, ...
            raise NetworkError(
                f"{_what(plan)}: {type(exc).__name__}: {exc}",
                hint="check the API URL and the network, then run the command again",
            ) from exc

    def _with_params(self, url: str) -> str:
        if not self.type.params:
            return url
        prepared = requests.Request("GET", url, params=self.type.params).prepare()
        return str(prepared.url)

    def _raise_for(self, response: requests.Response, plan: PlannedRequest) -> None:
        if response.status_code < 400:
            return
        raise problems.error_for(response, _what(plan))

    def _created_id(self, response: requests.Response, plan: PlannedRequest) -> str:
        if self.type.id_from == "location":
            location = response.headers.get("Location", "")
            if not location:
                raise ApiError("the API created the asset but sent no Location header")
            path = urlsplit(location).path.rstrip("/")
            collection = urlsplit(self.collection_url()).path.rstrip("/")
            # The collection's own path names no asset (it would pass for one named
            # like the collection): treat it as an empty id.
            found: object = (
                "" if path == collection else unquote(path.rpartition("/")[2])
            )
        else:
            found = _json(response, _what(plan)).get(self.type.id_field)
            if found is None:
                raise ApiError(f"the API's create answer has no {self.type.id_field!r}")
        if str(found) in UNUSABLE_IDS:
            raise ApiError(
                f"the API created an asset but named it {str(found)!r}, "
                "which cannot be used as an id in a URL path",
                hint="ask the API's owners; look the asset up with `asset list`",
            )
        return str(found)

    def _asset(
        self,
        response: requests.Response,
        asset_id: str,
        *,
        plan: PlannedRequest | None = None,
        need_body: bool = True,
    ) -> Asset:
        """An answer as an `Asset`; where the body is needed it must be a JSON object.

        Write answers need no body (the write is done either way): an unreadable one
        is kept as None, never as `{}`, so no one builds a new body from it.
        """
        if need_body:
            what = _what(plan) if plan else f"GET {urlsplit(response.url).path}"
            body: dict[str, Any] | None = _json(response, what)
        else:
            body = _json_or_none(response)
        etag = response.headers.get("ETag")
        return Asset(id=asset_id, body=body, etag=etag, status=response.status_code)


def _what(plan: PlannedRequest) -> str:
    return f"{plan.method} {urlsplit(plan.url).path}"


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object answered; anything else (HTML, cut JSON, empty) is an error."""
    try:
        body = response.json()
    except (ValueError, RecursionError) as exc:
        raise problems.not_json(response, what, "JSON") from exc
    if not isinstance(body, dict):
        raise problems.not_json(response, what, "a JSON object")
    return body


def _json_or_none(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json() if response.content else None
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) and body else None


def holds(found: Any, sent: Mapping[str, Any]) -> bool:
    """Whether the asset found carries every field that was sent, as sent."""
    return isinstance(found, Mapping) and all(
        found.get(k) == v for k, v in sent.items()
    )
