"""The requests auth hook against real local HTTP servers (http.server in threads): one
plays Keycloak and the API, the other a foreign host. Checks what each server
received."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assetctl.auth import authorized_session
from assetctl.auth.credentials import Credentials
from assetctl.auth.manager import Authenticator
from assetctl.auth.tokens import TokenSet
from assetctl.config import Settings

from .conftest import MemoryStore


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None, bytes]] = []
        self.accepted: set[str] = set()
        self.refreshes = 0
        self.base = ""
        self.redirect_to = ""
        self.lock = threading.Lock()

    def api_hits(self) -> list[str | None]:
        return [
            auth for method, path, auth, _ in self.requests if path.startswith("/api/")
        ]


def make_handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the retry reuses the connection

        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization")
            with rec.lock:
                rec.requests.append((self.command, self.path, auth, body))
            issuer = f"{rec.base}/realms/demo"
            if self.path == "/realms/demo/.well-known/openid-configuration":
                token_url = f"{issuer}/protocol/openid-connect/token"
                return self._reply(200, {"issuer": issuer, "token_endpoint": token_url})
            if self.path == "/realms/demo/protocol/openid-connect/token":
                with rec.lock:
                    rec.refreshes += 1
                    n = rec.refreshes
                answer = {
                    "access_token": f"at-{n}",
                    "expires_in": 300,
                    "refresh_token": f"rt-{n}",
                }
                return self._reply(200, answer)
            if self.path == "/api/redirect-out":
                return self._reply(302, {}, {"Location": rec.redirect_to})
            if self.path.startswith("/api/"):
                token = (auth or "").removeprefix("Bearer ")
                if token in rec.accepted:
                    return self._reply(200, {"ok": True, "token": token})
                return self._reply(
                    401,
                    {"error": "invalid_token"},
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return self._reply(200, {"foreign": True})

        do_GET = do_POST = do_PUT = _handle

    return Handler


def serve(rec: Recorder) -> Iterator[Recorder]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec))
    rec.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Iterator[Recorder]:
    yield from serve(Recorder())


@pytest.fixture
def foreign() -> Iterator[Recorder]:
    yield from serve(Recorder())


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def settings_for(api: Recorder) -> Settings:
    return Settings(
        server_url=api.base,
        realm="demo",
        client_id="assetctl-cli",
        api_url=f"{api.base}/api",
        timeout=5,
    )


def session_for(api: Recorder, *, logged_in: bool = True, env: dict | None = None):
    settings = settings_for(api)
    store = MemoryStore()
    credentials = Credentials(store, "default")
    if logged_in:
        now = time.time()
        credentials.save_tokens(
            TokenSet(
                access_token="at-0",
                expires_at=now + 250,
                refresh_token="rt-0",
                issuer=f"{api.base}/realms/demo",
                client_id="assetctl-cli",
                obtained_at=now - 50,
            )
        )
    authn = Authenticator(settings, credentials=credentials, env=env or {})
    return authorized_session(settings, authn)


def test_the_token_is_attached(api):
    api.accepted = {"at-0"}

    response = session_for(api).get(f"{api.base}/api/items")

    assert response.status_code == 200
    assert api.api_hits() == ["Bearer at-0"]
    assert api.refreshes == 0


def test_a_401_refreshes_once_and_retries_once(api):
    api.accepted = {"at-1"}

    response = session_for(api).post(f"{api.base}/api/items", json={"name": "x"})

    assert response.status_code == 200
    assert response.json()["token"] == "at-1"
    assert api.api_hits() == ["Bearer at-0", "Bearer at-1"]
    assert api.refreshes == 1
    assert [r.status_code for r in response.history] == [401]
    bodies = [body for _, path, _, body in api.requests if path == "/api/items"]
    assert bodies == [b'{"name": "x"}', b'{"name": "x"}']


def test_a_second_401_is_returned_as_is(api):
    api.accepted = set()

    started = time.monotonic()
    response = session_for(api).get(f"{api.base}/api/items")

    assert time.monotonic() - started < 3
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert api.api_hits() == ["Bearer at-0", "Bearer at-1"]
    assert api.refreshes == 1


def test_each_request_gets_at_most_one_retry(api):
    api.accepted = set()
    session = session_for(api)

    for _ in range(3):
        assert session.get(f"{api.base}/api/items").status_code == 401

    assert len(api.api_hits()) == 6
    assert api.refreshes == 3


def test_an_environment_token_is_not_refreshed_after_a_401(api):
    api.accepted = set()

    response = session_for(
        api, logged_in=False, env={"ASSETCTL_TOKEN": "ci-token-123456"}
    ).get(f"{api.base}/api/items")

    assert response.status_code == 401
    assert api.api_hits() == ["Bearer ci-token-123456"]
    assert api.refreshes == 0


def test_another_origin_gets_no_token(api, foreign):
    # Not logged in at all: asking the auth layer for a token would raise NotLoggedIn.
    session = session_for(api, logged_in=False)

    plain = session.get(f"{foreign.base}/items")
    forced = session.get(
        f"{foreign.base}/x", headers={"Authorization": "Bearer leak-me"}
    )
    # The same server under another name is another origin too.
    other_name = session.get(api.base.replace("127.0.0.1", "localhost") + "/api/items")

    assert plain.status_code == forced.status_code == 200
    assert other_name.status_code == 401
    assert [auth for _, _, auth, _ in foreign.requests] == [None, None]
    assert [auth for _, _, auth, _ in api.requests] == [None]


def test_a_redirect_to_another_origin_carries_no_token(api, foreign):
    api.accepted = {"at-0"}
    api.redirect_to = f"{foreign.base}/landing"

    response = session_for(api).get(f"{api.base}/api/redirect-out")

    assert response.json() == {"foreign": True}
    assert api.requests[0][2] == "Bearer at-0"
    assert [auth for _, _, auth, _ in foreign.requests] == [None]


def test_the_retried_exchange_shows_in_the_debug_dump(api, caplog):
    api.accepted = {"at-1"}
    with caplog.at_level(logging.DEBUG, logger="assetctl.http"):
        session_for(api).get(f"{api.base}/api/items")

    exchanges = [
        r.getMessage() for r in caplog.records if "/api/items ->" in r.getMessage()
    ]
    assert len(exchanges) == 2 and "-> 401" in exchanges[0] and "-> 200" in exchanges[1]
