"""Walking a list endpoint page by page in the style its registry entry names.

Items are yielded as each page arrives, so callers print the first rows before the last
page is fetched. Fetching (auth, retries, errors) is the caller's `fetch` function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from assetctl.assets import problems
from assetctl.errors import ApiError
from assetctl.registry import Paging

Fetch = Callable[[str, Mapping[str, Any] | None], requests.Response]


def iterate_items(
    fetch: Fetch, paging: Paging, url: str, params: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    """Every item of every page; stops at an empty page, the total, or no next link."""
    walk = _STYLES[paging.style]
    yield from walk(fetch, paging, url, dict(params))


def _single(fetch: Fetch, paging: Paging, url: str, params: dict) -> Iterator[dict]:
    yield from read_page(fetch(url, params), paging)[1]


def _numbered(fetch: Fetch, paging: Paging, url: str, params: dict) -> Iterator[dict]:
    """page/size or offset/limit parameters: count up until a page comes back empty."""
    position = paging.first_page if paging.style == "page" else 0
    seen = 0
    while True:
        query = {**params, **_size(paging)}
        query[paging.page_param if paging.style == "page" else paging.offset_param] = (
            position
        )
        body, page = read_page(fetch(url, query), paging)
        yield from page
        seen += len(page)
        total = dig(body, paging.total) if paging.total else None
        if not page or (isinstance(total, int) and seen >= total):
            return
        position += 1 if paging.style == "page" else len(page)


def _body_next(fetch: Fetch, paging: Paging, url: str, params: dict) -> Iterator[dict]:
    """A next link (or a cursor, with `cursor_param`) inside the body."""
    query: Mapping[str, Any] | None = {**params, **_size(paging)}
    while True:
        response = fetch(url, query)
        body, page = read_page(response, paging)
        yield from page
        following = dig(body, paging.next)
        if not following:
            return
        if paging.cursor_param:
            query = {**params, **_size(paging), paging.cursor_param: following}
        else:
            url, query = urljoin(response.url, str(following)), None


def _link_header(
    fetch: Fetch, paging: Paging, url: str, params: dict
) -> Iterator[dict]:
    """RFC 8288 `Link: <...>; rel="next"`, followed until it is absent."""
    query: Mapping[str, Any] | None = {**params, **_size(paging)}
    while True:
        response = fetch(url, query)
        yield from read_page(response, paging)[1]
        following = response.links.get("next", {}).get("url")
        if not following:
            return
        url, query = urljoin(response.url, following), None


def read_page(response: requests.Response, paging: Paging) -> tuple[Any, list[dict]]:
    """The parsed body and the items in it."""
    try:
        body = response.json()
    except (ValueError, RecursionError) as exc:
        raise problems.not_json(response, f"list {response.url}", "JSON") from exc
    items = dig(body, paging.items) if paging.items else body
    if not isinstance(items, list):
        where = f"at {paging.items!r}" if paging.items else "as the body"
        raise ApiError(
            f"list answer from {response.url} has no array {where}",
            hint="fix `list.items` in the registry",
        )
    return body, items


def dig(body: Any, path: str | None) -> Any:
    """Follow a dotted path (`data.items`) into parsed JSON; None if it ends early."""
    for part in (path or "").split("."):
        if not part:
            continue
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


def _size(paging: Paging) -> dict[str, int]:
    if paging.size_param and paging.page_size:
        return {paging.size_param: paging.page_size}
    return {}


_STYLES = {
    "none": _single,
    "page": _numbered,
    "offset": _numbered,
    "next": _body_next,
    "link-header": _link_header,
}
