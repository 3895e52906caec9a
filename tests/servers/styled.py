"""An in-memory asset API on a real socket: any paging, id and edit style, and faults.

It checks no tokens (the reference API does that); it exists so that every registry
style and every failure the batch must survive can be exercised over real HTTP.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

PAGING = ("none", "page", "offset", "next", "cursor", "link-header")
FAULTS = ("drop-before", "drop-after", "429", "429-date", "503", "502", "hang")
# Answers that are not what a JSON API promises, for one request each.
BROKEN_ANSWERS = {
    "html": (200, "text/html", b"<html><body>Sign in to continue</body></html>"),
    "cut-json": (200, "application/json", b'{"id": "t00000", "na'),
    "empty-200": (200, "application/json", b""),
    "json-list": (200, "application/json", b"[1, 2]"),
    "redirect-loop": (302, "text/plain", b""),
}


@dataclass
class Style:
    paging: str = "page"
    id_from: str = "body"  # body | location
    edit: str = "put"  # put | merge-patch
    etags: bool = True
    idempotency: bool = True
    bare_array: bool = False  # list answers are a bare array instead of {"items"}
    default_size: int = 10
    location: str | None = None  # a fixed Location for every create (a broken API)


@dataclass
class RandomFaults:
    """Injects a fault into a share of write requests (and some reads), seeded."""

    rate: float = 0.1
    kinds: tuple[str, ...] = FAULTS
    seed: int = 7
    hang_seconds: float = 1.5
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311

    def __call__(self, method: str, path: str) -> str | None:
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(self.kinds)


Fault = Callable[[str, str], "str | None"]


class AssetServer:
    """`/things` and `/things/<id>`, served while used as a context manager."""

    def __init__(self, style: Style | None = None, fault: Fault | None = None) -> None:
        self.style = style or Style()
        self.fault = fault
        self.hang_seconds = getattr(fault, "hang_seconds", 1.5)
        self.assets: dict[str, dict[str, Any]] = {}
        self.replays: dict[str, tuple[int, dict, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.faults_done: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> AssetServer:
        threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def seed(self, count: int, **fields: Any) -> list[str]:
        ids = [f"t{n:05d}" for n in range(count)]
        for asset_id in ids:
            self.assets[asset_id] = {
                "id": asset_id,
                "name": asset_id,
                "version": 1,
                **fields,
            }
        return ids

    def etag(self, asset: dict[str, Any]) -> str:
        return f'"{asset["version"]}"'


def _handler(server: AssetServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        api = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is exercised
    api: AssetServer

    def log_message(self, *args: Any) -> None:  # quiet in tests
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle plus delayed ACKs
        # add 40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routing and faults

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        body = self._body()
        self.api.requests.append((method, self.path))
        self.api.headers_seen.append(dict(self.headers))
        fault = self.api.fault(method, parts.path) if self.api.fault else None
        if fault and self._fault_before(fault):
            return
        status, headers, payload = self._route(
            method, segments, parse_qs(parts.query), body
        )
        if fault == "drop-after":  # the work is done, the answer is lost
            self.close_connection = True
            return
        self._send(status, headers, payload)

    def _fault_before(self, fault: str) -> bool:
        self.api.faults_done.append(fault)
        if fault in BROKEN_ANSWERS:
            status, kind, payload = BROKEN_ANSWERS[fault]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if status == 302:
                self.send_header("Location", self.path)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return True
        if fault in ("429", "429-date", "503", "502", "500", "401", "403"):
            status = 429 if fault.startswith("429") else int(fault)
            when = (
                formatdate(time.time() + 1, usegmt=True) if fault == "429-date" else "0"
            )
            headers = {"Retry-After": when} if status == 429 else {}
            self._send(status, headers, _problem(status, "try again later"))
            return True
        if fault == "hang":
            time.sleep(self.api.hang_seconds)
        self.close_connection = True
        return fault != "drop-after"

    def _route(self, method: str, segments: list[str], query: dict, body: Any) -> tuple:
        if segments[0] != "things" or len(segments) > 2:
            return 404, {}, _problem(404, "no such path")
        if len(segments) == 1:
            if method == "GET":
                return self._list(query)
            if method == "POST":
                return self._create(body)
            return 405, {}, _problem(405, "method not allowed")
        return self._item(method, unquote(segments[1]), body)

    # -- collection

    def _create(self, body: Any) -> tuple:
        if not isinstance(body, dict):
            return 400, {}, _problem(400, "the body must be a JSON object")
        key = (
            self.headers.get("Idempotency-Key") if self.api.style.idempotency else None
        )
        with self.api.lock:
            if key and key in self.api.replays:
                return self.api.replays[key]
            asset_id = str(body.get("id") or uuid.uuid4())
            if asset_id in self.api.assets:
                return 409, {}, _problem(409, f"{asset_id} exists")
            asset = {**body, "id": asset_id, "version": 1}
            self.api.assets[asset_id] = asset
            answer = self._created(asset)
            if key:
                self.api.replays[key] = answer
        return answer

    def _created(self, asset: dict[str, Any]) -> tuple:
        location = self.api.style.location
        headers = {"Location": location or f"/things/{quote(asset['id'], safe='')}"}
        if self.api.style.etags:
            headers["ETag"] = self.api.etag(asset)
        if self.api.style.id_from == "location":
            return 201, headers, b""
        return 201, headers, _json(asset)

    def _list(self, query: dict) -> tuple:
        style = self.api.style
        args = {k: v[0] for k, v in query.items()}
        filters = {k: v for k, v in args.items() if k not in _PAGING_PARAMS}
        with self.api.lock:
            matching = [a for a in self.api.assets.values() if _matches(a, filters)]
        size = int(args.get("size") or args.get("limit") or style.default_size)
        if style.paging == "none":
            return self._page(matching, {}, None)
        if style.paging == "page":
            start = (int(args.get("page", 1)) - 1) * size
            return self._page(
                matching[start : start + size], {"total": len(matching)}, None
            )
        if style.paging in ("offset", "link-header"):
            start = int(args.get("offset", 0))
            page = matching[start : start + size]
            more = start + size < len(matching)
            following = (
                {**args, "offset": start + size, "limit": size} if more else None
            )
            return self._page(page, {"total": len(matching)}, following)
        return self._after(matching, args, size)

    def _after(self, matching: list, args: dict, size: int) -> tuple:
        """next (a URL in the body) and cursor (an opaque token in the body)."""
        after = args.get("cursor") or args.get("after")
        ids = [a["id"] for a in matching]
        start = ids.index(after) + 1 if after in ids else 0
        page = matching[start : start + size]
        last = page[-1]["id"] if page and start + size < len(matching) else None
        if self.api.style.paging == "cursor":
            return 200, {}, _json({"data": {"items": page}, "cursor": last})
        query = {k: v for k, v in args.items() if k not in ("after", "limit")}
        link = (
            f"/things?{urlencode({**query, 'after': last, 'limit': size})}"
            if last
            else None
        )
        return 200, {}, _json({"items": page, "links": {"next": link}})

    def _page(self, page: list, extra: dict, following: dict | None) -> tuple:
        headers = {}
        if following is not None and self.api.style.paging == "link-header":
            url = f"{self.api.url}/things?{urlencode(following)}"
            headers["Link"] = f'<{url}>; rel="next"'
        if self.api.style.bare_array:
            return 200, headers, _json(page)
        return 200, headers, _json({"items": page, **extra})

    # -- items

    def _item(self, method: str, asset_id: str, body: Any) -> tuple:
        with self.api.lock:
            asset = self.api.assets.get(asset_id)
            if asset is None:
                return 404, {}, _problem(404, f"no asset {asset_id!r}")
            if method == "GET":
                return self._asset(asset)
            if not self._etag_matches(asset):
                return 412, {}, _problem(412, "the asset changed since it was read")
            if method == "DELETE":
                del self.api.assets[asset_id]
                return 204, {}, b""
            return self._edit(method, asset, body)

    def _edit(self, method: str, asset: dict[str, Any], body: Any) -> tuple:
        style = self.api.style.edit
        if (method == "PUT") != (style == "put") or not isinstance(body, dict):
            return 405, {}, _problem(405, f"this API edits with {style}")
        if (
            method == "PATCH"
            and self.headers.get("Content-Type") != "application/merge-patch+json"
        ):
            return 415, {}, _problem(415, "send application/merge-patch+json")
        fields = body if method == "PUT" else _merge(asset, body)
        updated = {**fields, "id": asset["id"], "version": asset["version"] + 1}
        self.api.assets[asset["id"]] = updated
        return self._asset(updated)

    def _asset(self, asset: dict[str, Any]) -> tuple:
        headers = {"ETag": self.api.etag(asset)} if self.api.style.etags else {}
        return 200, headers, _json(asset)

    def _etag_matches(self, asset: dict[str, Any]) -> bool:
        wanted = self.headers.get("If-Match")
        return wanted is None or wanted == self.api.etag(asset)

    # -- wire

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        is_problem = payload.startswith(b'{"type"')
        if payload:
            kind = "application/problem+json" if is_problem else "application/json"
            self.send_header("Content-Type", kind)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


_PAGING_PARAMS = {"page", "size", "offset", "limit", "after", "cursor"}


def _matches(asset: dict[str, Any], filters: dict[str, str]) -> bool:
    return all(str(asset.get(k)) == v for k, v in filters.items())


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _problem(status: int, detail: str) -> bytes:
    return _json(
        {
            "type": "about:blank",
            "title": f"error {status}",
            "status": status,
            "detail": detail,
        }
    )
