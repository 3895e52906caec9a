"""The login steps across processes: a pending login is polled without holding the
profile's lock while waiting, a new one is never overwritten by an old poll, logout
waits for a refresh in flight, and a realm reached under another name than its
issuer's is still the same realm. Keycloak is scripted with `responses`."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

import jwt
import pytest
import responses

from assetctl.auth import login
from assetctl.auth.credentials import Credentials
from assetctl.auth.device_flow import DeviceAuthorization
from assetctl.auth.manager import Authenticator
from assetctl.auth.tokens import TokenSet
from assetctl.config import Settings
from assetctl.http import make_session

from .conftest import MemoryStore

# The user reaches Keycloak as "kc-proxy"; Keycloak calls itself "kc.example.test".
PROXY_REALM = "https://kc-proxy.example.test/realms/demo"
ISSUER = "https://kc.example.test/realms/demo"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
LOGOUT_URL = f"{ISSUER}/protocol/openid-connect/logout"
SETTINGS = Settings(
    server_url="https://kc-proxy.example.test",
    realm="demo",
    client_id="cli",
    timeout=5,
)


def serve_discovery(rsps, **endpoints: str) -> None:
    """Discovery at the proxy's name, naming Keycloak's own issuer and `endpoints`."""
    rsps.add(
        responses.GET,
        f"{PROXY_REALM}/.well-known/openid-configuration",
        json={"issuer": ISSUER, "token_endpoint": TOKEN_URL, **endpoints},
    )


@pytest.fixture
def keycloak(rsps):
    serve_discovery(rsps, end_session_endpoint=LOGOUT_URL)
    return rsps


def authenticator(store: MemoryStore) -> Authenticator:
    return Authenticator(
        SETTINGS,
        session=make_session(SETTINGS),
        credentials=Credentials(store, "default"),
        env={},
    )


def pending(code: str, poll_in: float = 0.0) -> DeviceAuthorization:
    now = time.time()
    return DeviceAuthorization(
        device_code=code,
        user_code="ABCD-EFGH",
        verification_uri=f"{ISSUER}/device",
        verification_uri_complete=None,
        expires_at=now + 600,
        interval=1,
        issuer=ISSUER,
        realm_url=PROXY_REALM,
        client_id="cli",
        next_poll_at=now + poll_in,
    )


def logged_in(n: int = 0, sid: str | None = None) -> TokenSet:
    """A stored login; with `sid`, its access token is a JWT naming that session."""
    claims = {"n": n, **({"sid": sid} if sid else {})}
    return TokenSet(
        access_token=jwt.encode(claims, "k" * 32) if sid else f"at-{n}",
        expires_at=time.time() + 300,
        refresh_token=f"rt-{n}",
        issuer=ISSUER,
        realm_url=PROXY_REALM,
        client_id="cli",
    )


def polled_codes(rsps) -> list[str]:
    return [
        parse_qs(call.request.body)["device_code"][0]
        for call in rsps.calls
        if call.request.url == TOKEN_URL
    ]


def test_tokens_from_a_realm_reached_under_another_name_are_used(keycloak):
    keycloak.add(
        responses.POST,
        TOKEN_URL,
        json={"access_token": "at-1", "expires_in": 300, "refresh_token": "rt-1"},
    )
    store = MemoryStore()
    login.save_pending(authenticator(store), pending("dc-1"))

    outcome = login.resume_device_login(authenticator(store), once=True)

    assert isinstance(outcome, TokenSet)
    assert outcome.issuer == ISSUER and outcome.realm_url == PROXY_REALM
    # A later command, configured the same way, accepts the stored login.
    assert authenticator(store).access_token() == "at-1"


def test_waiting_for_the_interval_does_not_hold_the_profiles_lock(keycloak):
    keycloak.add(
        responses.POST, TOKEN_URL, status=400, json={"error": "authorization_pending"}
    )
    store = MemoryStore()
    login.save_pending(authenticator(store), pending("dc-old", poll_in=30))
    sleeping, wake = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        sleeping.set()
        wake.wait(10)

    result: list[object] = []
    poller = threading.Thread(
        target=lambda: result.append(
            login.resume_device_login(authenticator(store), once=True, sleep=sleep)
        )
    )
    poller.start()
    assert sleeping.wait(10)

    # Meanwhile another process starts a new login: it gets the lock at once...
    other = authenticator(store)
    started = time.monotonic()
    login.save_pending(other, pending("dc-new"))
    assert time.monotonic() - started < 2
    wake.set()
    poller.join(10)

    # ...and the waiting poll goes on with the new code, never writing the old back.
    assert polled_codes(keycloak) == ["dc-new"]
    assert json.loads(store.items["default/pending"])["device_code"] == "dc-new"


def test_logout_waits_for_a_refresh_in_flight_and_removes_its_result(keycloak):
    keycloak.add(responses.POST, LOGOUT_URL, status=204)
    store = MemoryStore()
    refreshing = authenticator(store)
    old = logged_in(0)
    refreshing.store_login(old)
    locked, done = threading.Event(), threading.Event()

    def refresh_slowly() -> None:
        with refreshing.lock():
            locked.set()
            time.sleep(0.5)
            refreshing.credentials.save_tokens(old.with_updates(refresh_token="rt-1"))
        done.set()

    threading.Thread(target=refresh_slowly).start()
    assert locked.wait(10)
    result = login.logout(authenticator(store))

    assert done.is_set()  # logout took its turn after the refresh
    assert result.removed and "default/tokens" not in store.items
    logout_posts = [c for c in keycloak.calls if c.request.url == LOGOUT_URL]
    assert parse_qs(logout_posts[0].request.body)["refresh_token"] == ["rt-1"]


@pytest.mark.parametrize(
    ("first_sid", "second_sid", "ends_first"),
    [
        ("s-1", "s-2", True),  # two sessions: the first is orphaned unless ended
        ("s-1", "s-1", False),  # one browser approved both: ending it ends the new one
        (None, None, False),  # opaque tokens: no proof they differ
    ],
)
def test_a_second_login_ends_the_first_session_only_if_it_is_another(
    keycloak, first_sid, second_sid, ends_first
):
    keycloak.add(responses.POST, LOGOUT_URL, status=204)
    store = MemoryStore()
    authn = authenticator(store)

    login.complete_login(authn, logged_in(1, first_sid))
    login.complete_login(authn, logged_in(2, second_sid))

    ended = [
        parse_qs(c.request.body) for c in keycloak.calls if c.request.url == LOGOUT_URL
    ]
    assert [e["refresh_token"] for e in ended] == ([["rt-1"]] if ends_first else [])
    assert json.loads(store.items["default/tokens"])["refresh_token"] == "rt-2"


def test_logout_falls_back_to_rfc7009_revocation_where_there_is_no_logout(rsps):
    revoke_url = f"{ISSUER}/protocol/openid-connect/revoke"
    serve_discovery(rsps, revocation_endpoint=revoke_url)
    rsps.add(responses.POST, revoke_url, status=200)
    store = MemoryStore()
    authn = authenticator(store)
    authn.store_login(logged_in(0))

    result = login.logout(authn)

    assert result.server == "revocation" and result.server_ok and result.removed
    (call,) = [c for c in rsps.calls if c.request.url == revoke_url]
    sent = parse_qs(call.request.body)
    assert sent["token"] == ["rt-0"] and sent["token_type_hint"] == ["refresh_token"]
