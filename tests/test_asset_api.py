"""The reference asset API as a real waitress process, trusting a local JWKS.

No Keycloak here: the tests mint RS256 tokens with their own key and serve its
JWKS from a thread, so every auth rule can be exercised one claim at a time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

REPO_ROOT = Path(__file__).resolve().parents[1]
ISSUER = "http://127.0.0.1:18080/realms/assetctl"
AUDIENCE = "asset-api"
WRITER = "asset-writer"
START_BUDGET = 30.0


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Jwks:
    """A JWKS document served over HTTP; tests may add keys (rotation)."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    url: str = ""

    def document(self) -> bytes:
        jwks = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return json.dumps({"keys": jwks}).encode()


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    served = Jwks(keys={"key-1": new_key()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = served.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/certs"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def mint(
    jwks: Jwks,
    *,
    kid: str = "key-1",
    key: rsa.RSAPrivateKey | None = None,
    roles: tuple[str, ...] = (WRITER,),
    username: str = "demo",
    **claims: Any,
) -> str:
    """A Keycloak-shaped access token; `claims` override or (None) drop claims."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": [AUDIENCE, "account"],
        "sub": f"sub-{username}",
        "preferred_username": username,
        "typ": "Bearer",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["offline_access", *roles]},
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    signing_key = key or jwks.keys[kid]
    return jwt.encode(payload, signing_key, algorithm="RS256", headers={"kid": kid})


@dataclass
class Api:
    """The running server: its base URL, its log, and a way to call it."""

    base: str
    log_path: Path
    jwks: Jwks
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self, method: str, path: str, as_who: str | None = "writer", **kw: Any
    ) -> requests.Response:
        """Call as "writer", "reader", with a given token, or with none (None)."""
        headers = dict(kw.pop("headers", {}))
        token = as_who
        if token == "writer":
            token = mint(self.jwks)
        elif token == "reader":
            token = mint(self.jwks, roles=(), username="reader")
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, headers=headers, timeout=10, **kw)


def start_server(workdir: Path, jwks_url: str) -> tuple[subprocess.Popen, Path]:
    log_path = workdir / "asset-api.log"
    argv = [
        sys.executable, "-m", "devstack.asset_api",
        "--host", "127.0.0.1", "--port", "0",
        "--db", str(workdir / "assets.sqlite3"),
        "--issuer", ISSUER, "--jwks-url", jwks_url,
        "--audience", AUDIENCE,
    ]  # fmt: skip
    # The writer role comes from the environment, so ASSET_API_* is exercised too.
    env = {**os.environ, "ASSET_API_WRITER_ROLE": WRITER, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return proc, log_path


def announced_base(proc: subprocess.Popen, log_path: Path) -> str:
    """Wait for the `listening on` line (the server picked the port: --port 0)."""
    deadline = time.monotonic() + START_BUDGET
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log_path.read_text())
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"asset API did not start:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, jwks: Jwks) -> Iterator[Api]:
    proc, log_path = start_server(tmp_path_factory.mktemp("asset-api"), jwks.url)
    try:
        base = announced_base(proc, log_path)
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        yield Api(base, log_path, jwks)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tag() -> str:
    """A value unique to one test, to filter its own assets out of shared lists."""
    return uuid.uuid4().hex


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert all(
        isinstance(body[k], str) and body[k] for k in ("type", "title", "detail")
    )
    return body


def challenge_error(response: requests.Response) -> str | None:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith('Bearer realm="asset-api"')
    match = re.search(r'error="([^"]*)"', header)
    return match.group(1) if match else None


# --- authentication and authorisation ---------------------------------------


def test_healthz_needs_no_token(api: Api) -> None:
    response = api.call("GET", "/healthz", as_who=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/datasets", "/models", "/datasets/x", "/nowhere"])
def test_missing_token_is_401_without_error_attribute(api: Api, path: str) -> None:
    response = api.call("GET", path, as_who=None)
    assert_problem(response, 401)
    # RFC 6750 3.1: a request without credentials gets no error code.
    assert challenge_error(response) is None


def test_other_auth_scheme_counts_as_no_token(api: Api) -> None:
    headers = {"Authorization": "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"}
    response = api.call("GET", "/datasets", as_who=None, headers=headers)
    assert_problem(response, 401)
    assert challenge_error(response) is None


BAD_TOKENS = {
    "garbage": lambda j: "not.a.jwt",
    "bad signature": lambda j: mint(j, key=new_key()),
    "wrong issuer": lambda j: mint(j, iss="http://127.0.0.1:9/realms/other"),
    "issuer with trailing slash": lambda j: mint(j, iss=ISSUER + "/"),
    "wrong audience": lambda j: mint(j, aud="account"),
    "no audience": lambda j: mint(j, aud=None),
    "expired past leeway": lambda j: mint(j, exp=int(time.time()) - 60),
    "no expiry": lambda j: mint(j, exp=None),
    "not yet valid": lambda j: mint(j, nbf=int(time.time()) + 120),
    "unknown kid": lambda j: mint(j, kid="no-such-key", key=new_key()),
    "refresh token": lambda j: mint(j, typ="Refresh"),
    "hmac": lambda j: jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        "a-shared-secret-of-at-least-32-bytes!",
        algorithm="HS256",
        headers={"kid": "key-1"},
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_invalid_token_is_401_invalid_token(api: Api, case: str) -> None:
    token = BAD_TOKENS[case](api.jwks)
    response = api.call("GET", "/datasets", as_who=token)
    body = assert_problem(response, 401)
    assert challenge_error(response) == "invalid_token"
    assert 'error_description="' in response.headers["WWW-Authenticate"]
    assert token not in response.text and token not in body["detail"]


def test_expiry_has_a_small_leeway(api: Api) -> None:
    token = mint(api.jwks, exp=int(time.time()) - 3)
    assert api.call("GET", "/datasets", as_who=token).status_code == 200


def test_audience_may_be_a_plain_string(api: Api) -> None:
    token = mint(api.jwks, aud=AUDIENCE)
    assert api.call("GET", "/models", as_who=token).status_code == 200


def test_reader_reads_but_cannot_write(api: Api) -> None:
    assert api.call("GET", "/datasets", as_who="reader").status_code == 200
    created = api.call("POST", "/models", json={"name": "m"}).headers["Location"]

    attempts = [
        ("POST", "/datasets", {"json": {"name": "x"}}),
        ("PUT", created, {"json": {"name": "y"}}),
        ("PATCH", created, {"data": "{}", "headers": merge_patch_type()}),
        ("DELETE", created, {}),
    ]
    for method, path, kw in attempts:
        response = api.call(method, path, as_who="reader", **kw)
        assert_problem(response, 403)
        assert challenge_error(response) == "insufficient_scope"
    assert api.call("GET", created, as_who="reader").status_code == 200


def test_rotated_key_is_fetched_on_unknown_kid(api: Api) -> None:
    api.jwks.keys["key-2"] = new_key()
    time.sleep(2.5)  # the server's JWKS refetch cooldown
    token = mint(api.jwks, kid="key-2")
    assert api.call("GET", "/datasets", as_who=token).status_code == 200


def test_log_has_access_lines_but_no_tokens(api: Api) -> None:
    token = mint(api.jwks)
    api.call("GET", "/datasets?page=1", as_who=token)
    log = api.log_path.read_text()
    assert re.search(r"GET /datasets 200 \d+\.\dms", log)
    assert token not in log
    assert token.split(".")[1] not in log
    assert "Authorization" not in log and "Bearer" not in log


# --- datasets ---------------------------------------------------------------


def test_dataset_lifecycle(api: Api) -> None:
    created = api.call("POST", "/datasets", json={"name": "d1", "rows": 3})
    assert created.status_code == 201
    asset = created.json()
    assert asset["name"] == "d1" and asset["rows"] == 3 and asset["version"] == 1
    assert asset["created_by"] == "demo"
    assert asset["created_at"] == asset["updated_at"]
    location = created.headers["Location"]
    assert location == f"{api.base}/datasets/{asset['id']}"

    fetched = api.call("GET", location)
    assert fetched.json() == asset
    assert fetched.headers["ETag"] == created.headers["ETag"]

    replaced = api.call("PUT", location, json={"name": "d1b", "version": 99})
    assert replaced.status_code == 200
    after = replaced.json()
    assert "rows" not in after and after["name"] == "d1b"
    assert after["id"] == asset["id"] and after["version"] == 2
    assert after["created_at"] == asset["created_at"]
    assert replaced.headers["ETag"] != fetched.headers["ETag"]

    assert api.call("DELETE", location).status_code == 204
    assert_problem(api.call("GET", location), 404)
    assert_problem(api.call("DELETE", location), 404)


def test_dataset_client_id_and_conflict(api: Api) -> None:
    asset_id = f"ds-{tag()}"
    first = api.call("POST", "/datasets", json={"id": asset_id, "n": 1})
    assert first.status_code == 201 and first.json()["id"] == asset_id
    assert_problem(api.call("POST", "/datasets", json={"id": asset_id}), 409)
    assert_problem(api.call("POST", "/datasets", json={"id": 7}), 400)
    assert api.call("GET", f"/datasets/{asset_id}").json()["n"] == 1


def test_dataset_put_cannot_change_id(api: Api) -> None:
    asset_id = api.call("POST", "/datasets", json={}).json()["id"]
    response = api.call("PUT", f"/datasets/{asset_id}", json={"id": "other"})
    assert_problem(response, 400)
    assert_problem(api.call("PUT", "/datasets/missing-" + tag(), json={}), 404)


def test_dataset_id_with_slashes_and_dots_round_trips(api: Api) -> None:
    weird = "a/../b"
    created = api.call("POST", "/datasets", json={"id": weird, "v": 1})
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith("/datasets/a%2F..%2Fb")

    item = api.call("GET", "/datasets/a%2F..%2Fb")
    assert item.status_code == 200 and item.json()["id"] == weird
    for near_miss in ("/datasets/b", "/datasets/a", "/datasets/a%2F..%2Fc"):
        assert_problem(api.call("GET", near_miss), 404)

    assert api.call("PUT", "/datasets/a%2F..%2Fb", json={"v": 2}).json()["v"] == 2
    assert api.call("DELETE", "/datasets/a%2F..%2Fb").status_code == 204
    assert_problem(api.call("GET", "/datasets/a%2F..%2Fb"), 404)


def test_dataset_unicode_and_percent_ids(api: Api) -> None:
    for weird in ("daten sätze", "100%", "q?x=1#f"):
        created = api.call("POST", "/datasets", json={"id": weird})
        assert created.status_code == 201, created.text
        assert api.call("GET", created.headers["Location"]).json()["id"] == weird


def test_dataset_patch_is_not_allowed(api: Api) -> None:
    asset_id = api.call("POST", "/datasets", json={}).json()["id"]
    response = api.call(
        "PATCH", f"/datasets/{asset_id}", data="{}", headers=merge_patch_type()
    )
    assert_problem(response, 405)
    assert "PUT" in response.headers["Allow"]


# --- models -----------------------------------------------------------------


def merge_patch_type() -> dict[str, str]:
    return {"Content-Type": "application/merge-patch+json"}


def create_model(api: Api, body: dict[str, Any]) -> str:
    created = api.call("POST", "/models", json=body)
    assert created.status_code == 201, created.text
    return created.headers["Location"]


def test_model_lifecycle(api: Api) -> None:
    created = api.call("POST", "/models", json={"id": "ignored", "name": "m1"})
    assert created.status_code == 201
    assert created.content == b""
    location = created.headers["Location"]
    assert re.fullmatch(r"/models/[0-9a-f-]{36}", location)

    asset = api.call("GET", location).json()
    assert asset["id"] == location.rsplit("/", 1)[1] != "ignored"
    assert asset["name"] == "m1" and asset["version"] == 1

    replaced = api.call("PUT", location, json={"name": "m2"})
    assert replaced.json()["name"] == "m2" and replaced.json()["version"] == 2

    assert api.call("DELETE", location).status_code == 204
    assert_problem(api.call("GET", location), 404)


def test_model_merge_patch(api: Api) -> None:
    location = create_model(
        api, {"name": "m", "params": {"lr": 0.1, "layers": 4}, "drop": "me"}
    )
    patch = {"params": {"lr": None, "dropout": 0.5}, "drop": None, "tags": ["x"]}
    response = api.call(
        "PATCH", location, data=json.dumps(patch), headers=merge_patch_type()
    )
    assert response.status_code == 200, response.text
    asset = response.json()
    assert asset["params"] == {"layers": 4, "dropout": 0.5}
    assert "drop" not in asset and asset["tags"] == ["x"] and asset["name"] == "m"
    assert asset["version"] == 2
    assert api.call("GET", location).json() == asset


def test_model_patch_needs_merge_patch_type(api: Api) -> None:
    location = create_model(api, {"name": "m"})
    response = api.call("PATCH", location, json={"name": "n"})
    assert_problem(response, 415)
    assert response.headers["Accept-Patch"] == "application/merge-patch+json"


def test_concurrent_patches_lose_no_update(api: Api) -> None:
    location = create_model(api, {"name": "counter"})
    token = mint(api.jwks)

    def bump(i: int) -> int:
        body = json.dumps({f"k{i}": i})
        headers = {**merge_patch_type(), "Authorization": f"Bearer {token}"}
        url = api.base + location
        return requests.patch(url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(bump, range(200))) == {200}
    asset = api.call("GET", location).json()
    assert asset["version"] == 201
    assert all(asset[f"k{i}"] == i for i in range(200))


# --- preconditions, idempotency ---------------------------------------------


def test_if_match(api: Api) -> None:
    location = create_model(api, {"name": "e"})
    etag = api.call("GET", location).headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)  # strong

    first = api.call("PUT", location, json={"name": "f"}, headers={"If-Match": etag})
    assert first.status_code == 200
    stale = api.call("PUT", location, json={"name": "g"}, headers={"If-Match": etag})
    assert_problem(stale, 412)
    assert stale.headers["ETag"] == first.headers["ETag"]

    weak = {"If-Match": "W/" + first.headers["ETag"], **merge_patch_type()}
    assert_problem(api.call("PATCH", location, data="{}", headers=weak), 412)
    assert_problem(api.call("DELETE", location, headers={"If-Match": etag}), 412)

    listed = {"If-Match": f'"nope", {first.headers["ETag"]}'}
    assert api.call("PUT", location, json={"name": "h"}, headers=listed).ok
    assert api.call("GET", location).json()["name"] == "h"


@pytest.mark.parametrize("kind", ["datasets", "models"])
def test_idempotency_key_replays_the_first_answer(api: Api, kind: str) -> None:
    marker, key = tag(), {"Idempotency-Key": tag()}
    first = api.call("POST", f"/{kind}", json={"m": marker}, headers=key)
    again = api.call("POST", f"/{kind}", json={"m": marker}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(api, kind, m=marker) == 1

    other_body = api.call("POST", f"/{kind}", json={"m": "x"}, headers=key)
    assert_problem(other_body, 422)

    # Keys belong to one user: another writer's identical key creates anew.
    token = mint(api.jwks, username="ci")
    fresh = api.call("POST", f"/{kind}", json={"m": marker}, headers=key, as_who=token)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert count(api, kind, m=marker) == 2


def count(api: Api, kind: str, **filters: str) -> int:
    if kind == "datasets":
        return api.call("GET", "/datasets", params=filters).json()["total"]
    return int(api.call("GET", "/models", params=filters).headers["X-Total-Count"])


# --- lists: paging and filters ----------------------------------------------


def create_many(api: Api, kind: str, marker: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        created = api.call("POST", f"/{kind}", json={"batch": marker, "i": i})
        assert created.status_code == 201
        ids.append(created.headers["Location"].rsplit("/", 1)[1])
    return ids


def test_dataset_pages_cover_everything_once(api: Api) -> None:
    marker = tag()
    expected = create_many(api, "datasets", marker, 120)

    seen, pages = [], 0
    url: str | None = f"/datasets?batch={marker}&size=25"
    while url:
        body = api.call("GET", urljoin(api.base + "/", url)).json()
        assert body["total"] == 120 and body["size"] == 25
        assert body["page"] == pages + 1
        seen += [item["id"] for item in body["items"]]
        url, pages = body["next"], pages + 1
    assert seen == expected
    assert pages == 5


def test_model_pages_follow_link_headers(api: Api) -> None:
    marker = tag()
    expected = create_many(api, "models", marker, 120)

    seen, pages = [], 0
    url: str | None = f"{api.base}/models?batch={marker}&limit=25"
    while url:
        response = api.call("GET", url)
        items = response.json()
        assert isinstance(items, list) and len(items) <= 25
        seen += [item["id"] for item in items]
        url, pages = response.links.get("next", {}).get("url"), pages + 1
    assert seen == expected
    assert pages == 5


def test_page_size_defaults_and_caps(api: Api) -> None:
    body = api.call("GET", "/datasets").json()
    assert body["size"] == 50 and body["page"] == 1
    assert api.call("GET", "/datasets?size=10000").json()["size"] == 500
    assert len(api.call("GET", "/models?limit=10000").json()) <= 500
    for bad in ("page=0", "size=0", "page=x", "size=-1", "page=1_0"):
        assert_problem(api.call("GET", f"/datasets?{bad}"), 400)
    for bad in ("offset=-1", "limit=0", "limit=abc"):
        assert_problem(api.call("GET", f"/models?{bad}"), 400)


@pytest.mark.parametrize("kind", ["datasets", "models"])
def test_filter_by_top_level_fields(api: Api, kind: str) -> None:
    marker = tag()
    for color, n in [("red", 1), ("blue", 2), ("red", 3)]:
        body = {"batch": marker, "color": color, "n": n}
        assert api.call("POST", f"/{kind}", json=body).status_code == 201

    assert count(api, kind, batch=marker) == 3
    assert count(api, kind, batch=marker, color="red") == 2
    assert count(api, kind, batch=marker, n="2") == 1  # compared as text
    assert count(api, kind, batch=marker, color="green") == 0
    assert count(api, kind, batch=marker, missing_field="x") == 0
    assert count(api, kind, batch=marker, created_by="demo") == 3


def test_next_links_keep_filters(api: Api) -> None:
    marker = tag()
    create_many(api, "datasets", marker, 3)
    body = api.call("GET", f"/datasets?batch={marker}&size=2").json()
    assert body["next"].startswith("/datasets?")
    assert f"batch={marker}" in body["next"] and "page=2" in body["next"]


# --- errors are problem+json ------------------------------------------------


def test_bad_bodies(api: Api) -> None:
    json_type = {"Content-Type": "application/json"}
    cases = [
        ("{not json", json_type, 400),
        ("[1, 2]", json_type, 400),
        ('{"x": NaN}', json_type, 400),
        ("name=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("x" * (1024 * 1024 + 1), json_type, 413),
    ]
    for data, headers, status in cases:
        response = api.call("POST", "/datasets", data=data, headers=headers)
        assert_problem(response, status)


def test_unknown_route_and_method(api: Api) -> None:
    assert_problem(api.call("GET", "/nowhere"), 404)
    response = api.call("DELETE", "/datasets")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
