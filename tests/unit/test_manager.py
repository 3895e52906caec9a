"""The Authenticator: when it refreshes and when it must not, what it stores first, how
it fails, and how it keeps concurrent callers to one refresh. The token endpoint and
discovery are scripted with `responses`; the store is in memory."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import jwt
import pytest
import responses

from assetctl.auth.credentials import Credentials
from assetctl.auth.manager import Authenticator
from assetctl.auth.tokens import TokenSet
from assetctl.config import Settings
from assetctl.errors import (
    AuthError,
    ConfigError,
    ExitCode,
    NetworkError,
    NotLoggedIn,
    SessionEnded,
    StorageError,
)
from assetctl.http import make_session

from .conftest import DISCOVERY_URL, ISSUER, TOKEN_URL, MemoryStore

CLIENT = "assetctl-cli"
SETTINGS = Settings(
    server_url="https://kc.example.test", realm="demo", client_id=CLIENT, timeout=5
)


def stored_set(seconds_left: float, lifetime: float = 300.0, **changes) -> TokenSet:
    now = time.time()
    values = {
        "access_token": "at-0",
        "expires_at": now + seconds_left,
        "refresh_token": "rt-0",
        "refresh_expires_at": now + 1800,
        "lifetime": lifetime,
        "issuer": ISSUER,
        "client_id": CLIENT,
        "obtained_at": now - (lifetime - seconds_left),
    }
    values.update(changes)
    return TokenSet(**values)


def token_answer(n: int, expires_in: int = 300, rotate: bool = True) -> dict:
    body = {
        "access_token": f"at-{n}",
        "expires_in": expires_in,
        "refresh_expires_in": 1800,
    }
    if rotate:
        body["refresh_token"] = f"rt-{n}"
    return body


class TokenEndpoint:
    """Counts refreshes; each answers the next access token (optionally slowly)."""

    def __init__(self, rsps, delay: float = 0.0, **answer) -> None:
        self.calls: list[dict[str, str]] = []
        self.delay = delay
        self.answer = answer
        self._lock = threading.Lock()
        rsps.add_callback(responses.POST, TOKEN_URL, callback=self)

    def __call__(self, request):
        with self._lock:
            self.calls.append({k: v[0] for k, v in parse_qs(request.body).items()})
            n = len(self.calls)
        time.sleep(self.delay)
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(token_answer(n, **self.answer)),
        )


@pytest.fixture
def discovery(rsps):
    rsps.add(
        responses.GET,
        DISCOVERY_URL,
        json={
            "issuer": ISSUER,
            "token_endpoint": TOKEN_URL,
            "jwks_uri": f"{ISSUER}/certs",
        },
    )
    return rsps


@pytest.fixture
def credentials(memory_store: MemoryStore) -> Credentials:
    return Credentials(memory_store, "default")


def authenticator(credentials: Credentials, env: dict | None = None) -> Authenticator:
    return Authenticator(
        SETTINGS, session=make_session(SETTINGS), credentials=credentials, env=env or {}
    )


def store(credentials: Credentials, tokens: TokenSet) -> None:
    credentials.save_tokens(tokens)
    credentials.store.writes.clear()  # type: ignore[attr-defined]


def token_posts(rsps) -> int:
    return sum(1 for c in rsps.calls if c.request.url == TOKEN_URL)


def env_jwt(exp: float, **claims) -> str:
    return jwt.encode(
        {"exp": int(exp), "iss": ISSUER, **claims}, "k" * 32, algorithm="HS256"
    )


# -- when to refresh


def test_a_fresh_token_needs_no_request(discovery, credentials):
    store(credentials, stored_set(200))
    authn = authenticator(credentials)

    assert authn.access_token() == "at-0"
    assert authn.access_token() == "at-0"
    assert len(discovery.calls) == 0


@pytest.mark.parametrize(
    ("seconds_left", "lifetime", "refreshes"),
    [(31, 300, 0), (29, 300, 1), (-100, 300, 1), (1.5, 10, 0), (0.5, 10, 1)],
)
def test_refresh_within_the_margin_only(
    discovery, credentials, seconds_left, lifetime, refreshes
):
    store(credentials, stored_set(seconds_left, lifetime))
    endpoint = TokenEndpoint(discovery)

    token = authenticator(credentials).access_token()

    assert len(endpoint.calls) == refreshes
    assert token == ("at-1" if refreshes else "at-0")
    if refreshes:
        assert endpoint.calls[0] == {
            "grant_type": "refresh_token",
            "refresh_token": "rt-0",
            "client_id": CLIENT,
        }


def test_the_rotated_refresh_token_is_stored_before_the_token_is_handed_out(
    discovery, credentials, memory_store
):
    store(credentials, stored_set(5))
    TokenEndpoint(discovery)

    tokens = authenticator(credentials).valid_tokens()

    assert tokens.access_token == "at-1"
    assert len(memory_store.writes) == 1
    saved = TokenSet.from_json(memory_store.writes[0][1])
    assert saved.refresh_token == "rt-1" and saved.access_token == "at-1"
    assert credentials.load_tokens() == tokens


def test_a_refresh_token_the_server_does_not_rotate_is_kept(discovery, credentials):
    store(credentials, stored_set(5))
    TokenEndpoint(discovery, rotate=False)

    authenticator(credentials).valid_tokens()

    assert credentials.load_tokens().refresh_token == "rt-0"


def test_failing_to_save_the_new_tokens_is_loud(discovery, credentials, memory_store):
    store(credentials, stored_set(5))
    endpoint = TokenEndpoint(discovery)
    memory_store.fail_writes = "the keyring is locked"

    with pytest.raises(StorageError) as caught:
        authenticator(credentials).access_token()

    assert caught.value.exit_code == ExitCode.STORAGE
    assert "could not save the new tokens" in caught.value.message
    assert len(endpoint.calls) == 1


def test_invalid_grant_ends_the_session_after_one_request(discovery, credentials):
    store(credentials, stored_set(-10))
    discovery.add(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "Token is not active"},
    )
    authn = authenticator(credentials)

    started = time.monotonic()
    with pytest.raises(SessionEnded) as caught:
        authn.access_token()

    assert time.monotonic() - started < 2
    assert caught.value.exit_code == ExitCode.AUTH == 4
    assert "assetctl login" in str(caught.value)
    assert token_posts(discovery) == 1


def test_an_expired_refresh_token_ends_the_session_without_a_request(
    discovery, credentials
):
    store(credentials, stored_set(-10, refresh_expires_at=time.time() - 1))

    with pytest.raises(SessionEnded):
        authenticator(credentials).access_token()
    assert token_posts(discovery) == 0


def test_a_failing_token_endpoint_is_a_network_error_and_keeps_the_login(
    discovery, credentials
):
    store(credentials, stored_set(-10))
    discovery.add(responses.POST, TOKEN_URL, status=503, body="down")

    with pytest.raises(NetworkError):
        authenticator(credentials).access_token()
    assert credentials.load_tokens().refresh_token == "rt-0"
    assert token_posts(discovery) == 1


# -- whose tokens


def test_nothing_stored_is_not_logged_in(discovery, credentials):
    with pytest.raises(NotLoggedIn) as caught:
        authenticator(credentials).access_token()
    assert caught.value.exit_code == ExitCode.AUTH
    assert "assetctl login" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "changes",
    [
        {"issuer": "https://other.example.test/realms/demo"},
        {"client_id": "someone-else"},
    ],
)
def test_a_login_for_another_issuer_or_client_is_not_used(
    discovery, credentials, changes
):
    store(credentials, stored_set(-10, **changes))
    TokenEndpoint(discovery)

    with pytest.raises(NotLoggedIn):
        authenticator(credentials).access_token()
    assert len(discovery.calls) == 0


def test_assetctl_token_wins_and_is_never_refreshed(discovery, credentials):
    store(credentials, stored_set(-10))
    token = env_jwt(time.time() + 120)
    authn = authenticator(credentials, env={"ASSETCTL_TOKEN": f" {token}\n"})

    assert authn.access_token() == token
    assert authn.refresh_after_rejection(token) is None
    assert "ASSETCTL_TOKEN" in authn.source()
    assert len(discovery.calls) == 0


def test_an_opaque_assetctl_token_is_used_as_is(discovery, credentials):
    authn = authenticator(credentials, env={"ASSETCTL_TOKEN": "opaque-ci-token"})
    assert authn.access_token(min_valid=3600) == "opaque-ci-token"


@pytest.mark.parametrize(("exp_in", "min_valid"), [(-5, 0), (60, 120)])
def test_an_expired_assetctl_token_is_an_auth_error(
    discovery, credentials, exp_in, min_valid
):
    store(credentials, stored_set(200))
    authn = authenticator(
        credentials, env={"ASSETCTL_TOKEN": env_jwt(time.time() + exp_in)}
    )

    with pytest.raises(AuthError) as caught:
        authn.access_token(min_valid=min_valid)
    assert "ASSETCTL_TOKEN" in caught.value.message
    assert caught.value.exit_code == ExitCode.AUTH
    assert len(discovery.calls) == 0


# -- --min-valid


def test_min_valid_within_the_lifetime_refreshes_to_satisfy_it(discovery, credentials):
    store(credentials, stored_set(100))
    endpoint = TokenEndpoint(discovery)

    tokens = authenticator(credentials).valid_tokens(min_valid=200)

    assert tokens.access_token == "at-1" and tokens.seconds_left() > 200
    assert len(endpoint.calls) == 1


def test_min_valid_beyond_the_token_lifetime_is_an_auth_error(discovery, credentials):
    store(credentials, stored_set(250))
    endpoint = TokenEndpoint(discovery)

    with pytest.raises(AuthError) as caught:
        authenticator(credentials).valid_tokens(min_valid=600)

    assert "--min-valid" in (caught.value.hint or "")
    assert "300" in caught.value.message
    assert len(endpoint.calls) == 1
    assert credentials.load_tokens().refresh_token == "rt-1"  # rotation kept anyway


# -- after a 401, and concurrency


def test_refresh_after_rejection_refreshes_once_even_if_the_token_looks_fresh(
    discovery, credentials
):
    store(credentials, stored_set(250))
    endpoint = TokenEndpoint(discovery)
    authn = authenticator(credentials)
    assert authn.access_token() == "at-0"

    assert authn.refresh_after_rejection("at-0") == "at-1"
    # A second caller that was rejected with the old token gets the new one, no refresh.
    assert authn.refresh_after_rejection("at-0") == "at-1"
    assert authn.access_token() == "at-1"
    assert len(endpoint.calls) == 1


def test_refresh_after_rejection_uses_what_another_process_stored(
    discovery, credentials
):
    store(credentials, stored_set(250))
    endpoint = TokenEndpoint(discovery)
    authn = authenticator(credentials)
    assert authn.access_token() == "at-0"
    store(
        credentials, stored_set(280, access_token="at-other", refresh_token="rt-other")
    )

    assert authn.refresh_after_rejection("at-0") == "at-other"
    assert len(endpoint.calls) == 0


def run_together(functions) -> list:
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[i] = exc

    threads = [
        threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_two_threads_with_an_expired_token_make_one_refresh(discovery, credentials):
    store(credentials, stored_set(-10))
    endpoint = TokenEndpoint(discovery, delay=0.2)
    authn = authenticator(credentials)

    results = run_together([authn.access_token, authn.access_token])

    assert results == ["at-1", "at-1"]
    assert len(endpoint.calls) == 1


def test_two_authenticators_sharing_a_store_make_one_refresh(discovery, memory_store):
    # As two processes would: separate objects, one store, the per-profile file lock.
    first = authenticator(Credentials(memory_store, "default"))
    second = authenticator(Credentials(memory_store, "default"))
    store(first.credentials, stored_set(-10))
    endpoint = TokenEndpoint(discovery, delay=0.2)

    results = run_together([first.access_token, second.access_token])

    assert results == ["at-1", "at-1"]
    assert len(endpoint.calls) == 1


# -- service accounts


def test_a_service_account_token_is_renewed_with_the_client_secret(
    discovery, credentials
):
    store(credentials, stored_set(-10, refresh_token=None, grant="client_credentials"))
    endpoint = TokenEndpoint(discovery)
    authn = authenticator(credentials, env={"ASSETCTL_CLIENT_SECRET": "cs-abcdef123"})

    tokens = authn.valid_tokens()

    assert tokens.access_token == "at-1" and tokens.grant == "client_credentials"
    assert endpoint.calls[0]["grant_type"] == "client_credentials"
    assert "cs-abcdef123" not in json.dumps(endpoint.calls)  # sent as basic auth


def test_a_service_account_token_without_a_secret_ends_the_session(
    discovery, credentials
):
    store(credentials, stored_set(-10, refresh_token=None, grant="client_credentials"))

    with pytest.raises(SessionEnded, match="no client secret"):
        authenticator(credentials).valid_tokens()
    assert token_posts(discovery) == 0


def test_an_unreachable_server_inside_the_margin_keeps_the_still_valid_token(
    discovery, credentials
):
    store(credentials, stored_set(20))  # inside the 30 s margin, still valid
    discovery.add(responses.POST, TOKEN_URL, body=requests_connection_error())
    authn = authenticator(credentials)

    assert authn.access_token() == "at-0"
    with pytest.raises(NetworkError):
        authn.access_token(min_valid=60)  # more than the current token can give


def requests_connection_error():
    import requests

    return requests.exceptions.ConnectionError("refused")


def test_an_unusable_state_folder_is_a_storage_error(
    discovery, credentials, monkeypatch, tmp_path
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    store(credentials, stored_set(0))  # expired: a refresh needs the lock

    with pytest.raises(StorageError, match="lock folder"):
        authenticator(credentials).access_token()


# -- where secrets may go


def test_discovery_may_not_send_secrets_over_plain_http(rsps, credentials):
    loopback = Settings(
        server_url="http://127.0.0.1:8080", realm="demo", client_id=CLIENT, timeout=5
    )
    rsps.add(
        responses.GET,
        "http://127.0.0.1:8080/realms/demo/.well-known/openid-configuration",
        json={
            "issuer": "http://127.0.0.1:8080/realms/demo",
            "token_endpoint": "http://kc.example.test/realms/demo/token",
        },
    )
    authn = Authenticator(
        loopback, session=make_session(loopback), credentials=credentials, env={}
    )
    with pytest.raises(ConfigError, match="refusing plain http://"):
        authn.endpoints()


def test_endpoints_for_a_login_of_another_server_are_its_own(rsps, credentials):
    # The login was made at ISSUER; the settings now name another server.
    rsps.add(
        responses.GET,
        DISCOVERY_URL,
        json={"issuer": ISSUER, "token_endpoint": TOKEN_URL},
    )
    moved = Settings(
        server_url="https://elsewhere.example.test",
        realm="demo",
        client_id=CLIENT,
        timeout=5,
    )
    authn = Authenticator(
        moved, session=make_session(moved), credentials=credentials, env={}
    )

    assert authn.endpoints_for(stored_set(200)).token == TOKEN_URL
    assert [call.request.url for call in rsps.calls] == [DISCOVERY_URL]
