"""The device flow (RFC 8628) against a scripted token endpoint: every answer Keycloak
can give while polling, and the ones it cannot be made to give on demand (429, 5xx,
connection errors, a code expiring mid-request). Time is a fake clock; nothing
sleeps."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs

import pytest
import requests
import responses

from assetctl.auth import device_flow
from assetctl.auth.device_flow import DeviceAuthorization, Pending
from assetctl.auth.oidc import Endpoints
from assetctl.auth.tokens import TokenSet
from assetctl.config import Settings
from assetctl.errors import (
    AccessDenied,
    DeviceCodeExpired,
    ExitCode,
    LoginError,
)
from assetctl.http import make_session

from .conftest import DEVICE_URL, ISSUER, TOKEN_URL, FakeClock

DEVICE_ANSWER = {
    "device_code": "dc-secret-0123456789",
    "user_code": "ABCD-EFGH",
    "verification_uri": f"{ISSUER}/device",
    "verification_uri_complete": f"{ISSUER}/device?user_code=ABCD-EFGH",
    "expires_in": 600,
    "interval": 5,
}
TOKENS = {
    "access_token": "at-from-device-login",
    "expires_in": 300,
    "refresh_token": "rt-from-device-login",
    "refresh_expires_in": 1800,
    "token_type": "Bearer",
    "scope": "openid profile",
}


def error(name: str, description: str = "", status: int = 400) -> dict:
    body = {"error": name}
    if description:
        body["error_description"] = description
    return {"json": body, "status": status}


@pytest.fixture
def session() -> requests.Session:
    return make_session(Settings(timeout=5))


@pytest.fixture
def endpoints() -> Endpoints:
    return Endpoints(
        issuer=ISSUER,
        token=TOKEN_URL,
        device_authorization=DEVICE_URL,
        pkce_methods=("plain", "S256"),
    )


def authorization(clock: FakeClock, **changes) -> DeviceAuthorization:
    values = {
        "device_code": "dc-secret-0123456789",
        "user_code": "ABCD-EFGH",
        "verification_uri": f"{ISSUER}/device",
        "verification_uri_complete": None,
        "expires_at": clock.now() + 600,
        "interval": 5.0,
        "issuer": ISSUER,
        "client_id": "assetctl-cli",
        "next_poll_at": clock.now() + 5,
    }
    values.update(changes)
    return DeviceAuthorization(**values)


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def script_token_endpoint(rsps, *answers) -> None:
    """Each poll gets the next answer; an exception instance is raised instead."""
    for answer in answers:
        if isinstance(answer, Exception):
            rsps.add(responses.POST, TOKEN_URL, body=answer)
        else:
            rsps.add(responses.POST, TOKEN_URL, **answer)


def wait(session, endpoints, auth, clock, **kwargs):
    return device_flow.wait_for_tokens(
        session, endpoints, auth, sleep=clock.sleep, now=clock.now, **kwargs
    )


# -- device authorization request


def test_authorization_request_reads_the_answer(rsps, session, endpoints, clock):
    rsps.add(responses.POST, DEVICE_URL, json=DEVICE_ANSWER)

    auth = device_flow.request_authorization(
        session, endpoints, "assetctl-cli", "openid", use_pkce=False, now=clock.now
    )

    assert auth.user_code == "ABCD-EFGH"
    assert auth.verification_uri_complete.endswith("user_code=ABCD-EFGH")
    assert auth.expires_at == clock.now() + 600
    assert auth.interval == 5
    assert auth.next_poll_at == clock.now() + 5
    sent = form(rsps.calls[0])
    assert sent == {"client_id": "assetctl-cli", "scope": "openid"}


def test_pkce_is_sent_when_s256_is_advertised_and_verifier_reaches_token_endpoint(
    rsps, session, endpoints, clock
):
    rsps.add(responses.POST, DEVICE_URL, json=DEVICE_ANSWER)
    script_token_endpoint(rsps, {"json": TOKENS})

    auth = device_flow.request_authorization(
        session, endpoints, "assetctl-cli", "openid", now=clock.now
    )
    wait(session, endpoints, auth, clock)

    challenge = form(rsps.calls[0])
    assert challenge["code_challenge_method"] == "S256"
    poll = form(rsps.calls[1])
    verifier = poll["code_verifier"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge["code_challenge"] == expected.rstrip(b"=").decode()
    assert 43 <= len(verifier) <= 128  # RFC 7636 section 4.1


@pytest.mark.parametrize(
    ("methods", "use_pkce"), [(("plain",), True), ((), True), (("S256",), False)]
)
def test_no_pkce_unless_s256_is_advertised_and_wanted(
    rsps, session, clock, methods, use_pkce
):
    endpoints = Endpoints(
        issuer=ISSUER,
        token=TOKEN_URL,
        device_authorization=DEVICE_URL,
        pkce_methods=methods,
    )
    rsps.add(responses.POST, DEVICE_URL, json=DEVICE_ANSWER)
    script_token_endpoint(rsps, {"json": TOKENS})

    auth = device_flow.request_authorization(
        session, endpoints, "assetctl-cli", "openid", use_pkce=use_pkce, now=clock.now
    )
    wait(session, endpoints, auth, clock)

    assert "code_challenge" not in form(rsps.calls[0])
    assert "code_verifier" not in form(rsps.calls[1])


@pytest.mark.parametrize(
    ("answer", "expected_message", "expected_hint"),
    [
        (
            error(
                "invalid_client", "Invalid client or Invalid client credentials", 401
            ),
            "does not know client 'assetctl-cli'",
            "ASSETCTL_CLIENT_ID",
        ),
        (
            error(
                "unauthorized_client",
                "Client is not allowed to initiate OAuth 2.0 "
                "Device Authorization Grant. The flow is disabled for the client.",
            ),
            "may not use the device flow",
            "Device Authorization Grant",
        ),
    ],
)
def test_device_authorization_refusals_say_what_to_do(
    rsps, session, endpoints, answer, expected_message, expected_hint
):
    rsps.add(responses.POST, DEVICE_URL, **answer)

    with pytest.raises(LoginError) as caught:
        device_flow.request_authorization(session, endpoints, "assetctl-cli", "openid")

    assert expected_message in caught.value.message
    assert expected_hint in (caught.value.hint or "")
    assert caught.value.exit_code == ExitCode.AUTH


def test_other_device_authorization_errors_carry_the_servers_description(
    rsps, session, endpoints
):
    rsps.add(
        responses.POST, DEVICE_URL, **error("invalid_scope", "Invalid scopes: nope")
    )

    with pytest.raises(LoginError, match=r"invalid_scope \(Invalid scopes: nope\)"):
        device_flow.request_authorization(session, endpoints, "assetctl-cli", "nope")


def test_missing_device_endpoint_fails_before_any_request(rsps, session):
    endpoints = Endpoints(issuer=ISSUER, token=TOKEN_URL, device_authorization=None)

    with pytest.raises(LoginError, match="does not offer the device authorization"):
        device_flow.request_authorization(session, endpoints, "assetctl-cli", "openid")
    assert len(rsps.calls) == 0


def test_an_incomplete_device_answer_is_a_login_error(rsps, session, endpoints):
    body = {k: v for k, v in DEVICE_ANSWER.items() if k != "user_code"}
    rsps.add(responses.POST, DEVICE_URL, json=body)

    with pytest.raises(LoginError, match="lacks 'user_code'"):
        device_flow.request_authorization(session, endpoints, "assetctl-cli", "openid")


# -- polling


def test_authorization_pending_keeps_the_interval_and_tokens_come_back(
    rsps, session, endpoints, clock
):
    start = clock.now()
    script_token_endpoint(
        rsps,
        error("authorization_pending"),
        error("authorization_pending"),
        {"json": TOKENS},
    )

    tokens = wait(session, endpoints, authorization(clock), clock)

    assert clock.sleeps == [5, 5, 5]
    assert isinstance(tokens, TokenSet)
    assert tokens.access_token == "at-from-device-login"
    assert tokens.issuer == ISSUER and tokens.client_id == "assetctl-cli"
    assert tokens.expires_at == start + 15 + 300  # from the answer's arrival, not iat
    assert form(rsps.calls[0]) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": "dc-secret-0123456789",
        "client_id": "assetctl-cli",
    }


def test_slow_down_adds_five_seconds_for_good(rsps, session, endpoints, clock):
    script_token_endpoint(
        rsps,
        error("slow_down"),
        error("authorization_pending"),
        error("slow_down"),
        error("authorization_pending"),
        {"json": TOKENS},
    )

    wait(session, endpoints, authorization(clock), clock)

    assert clock.sleeps == [5, 10, 10, 15, 15]


def test_http_429_counts_as_slow_down(rsps, session, endpoints, clock):
    script_token_endpoint(
        rsps,
        {"status": 429, "body": "Too Many Requests", "content_type": "text/plain"},
        error("authorization_pending"),
        {"json": TOKENS},
    )

    wait(session, endpoints, authorization(clock), clock)

    assert clock.sleeps == [5, 10, 10]


def test_access_denied_ends_the_login(rsps, session, endpoints, clock):
    script_token_endpoint(rsps, error("authorization_pending"), error("access_denied"))

    with pytest.raises(AccessDenied) as caught:
        wait(session, endpoints, authorization(clock), clock)
    assert caught.value.exit_code == ExitCode.DENIED
    assert len(rsps.calls) == 2


def test_expired_token_ends_the_login(rsps, session, endpoints, clock):
    script_token_endpoint(rsps, error("expired_token", "Device code is expired"))

    with pytest.raises(DeviceCodeExpired) as caught:
        wait(session, endpoints, authorization(clock), clock)
    assert caught.value.exit_code == ExitCode.EXPIRED


def test_invalid_grant_once_the_code_has_expired_locally_means_expired(
    rsps, session, endpoints, clock
):
    # Keycloak says invalid_grant instead of expired_token some seconds past expiry;
    # here the code runs out while the request is on its way.
    auth = authorization(clock, expires_at=clock.now() + 6)

    def late_answer(request):
        clock.advance(3)
        return (
            400,
            {},
            json.dumps(
                {"error": "invalid_grant", "error_description": "Device code not valid"}
            ),
        )

    rsps.add_callback(
        responses.POST, TOKEN_URL, callback=late_answer, content_type="application/json"
    )

    with pytest.raises(DeviceCodeExpired):
        wait(session, endpoints, auth, clock)


def test_invalid_grant_before_expiry_is_a_login_error_with_the_description(
    rsps, session, endpoints, clock
):
    script_token_endpoint(rsps, error("invalid_grant", "Device code not valid"))

    with pytest.raises(LoginError) as caught:
        wait(session, endpoints, authorization(clock), clock)
    assert "invalid_grant" in caught.value.message
    assert "Device code not valid" in caught.value.message
    assert caught.value.exit_code == ExitCode.AUTH


def test_an_unknown_error_is_a_login_error_with_the_description(
    rsps, session, endpoints, clock
):
    script_token_endpoint(rsps, error("temporarily_confused", "the moon is in the way"))

    with pytest.raises(
        LoginError, match=r"temporarily_confused \(the moon is in the way\)"
    ):
        wait(session, endpoints, authorization(clock), clock)


def test_server_errors_and_network_failures_are_retried_without_losing_the_login(
    rsps, session, endpoints, clock
):
    script_token_endpoint(
        rsps,
        {"status": 503, "body": "<html>down</html>", "content_type": "text/html"},
        error("server_error", "boom", status=500),
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        error("authorization_pending"),
        {"json": TOKENS},
    )

    tokens = wait(session, endpoints, authorization(clock), clock)

    assert tokens.access_token == "at-from-device-login"
    # First wait is the interval; failures in a row double the wait (RFC 8628
    # section 3.5); after the blip the server's interval applies again, unchanged.
    assert clock.sleeps[0] == 5
    assert clock.sleeps[1:5] == [10, 20, 40, 60]
    assert clock.sleeps[5] == 5
    polls = [form(call) for call in rsps.calls]
    assert {p["device_code"] for p in polls} == {"dc-secret-0123456789"}


def test_failures_until_expiry_end_in_expired_not_a_loop(
    rsps, session, endpoints, clock
):
    rsps.add(
        responses.POST, TOKEN_URL, body=requests.exceptions.ConnectionError("down")
    )
    auth = authorization(clock, expires_at=clock.now() + 120)

    with pytest.raises(DeviceCodeExpired):
        wait(session, endpoints, auth, clock)
    # Polls at +5, then waits of 10, 20, 40 and 60 s: the last one would land past
    # expiry.
    assert len(rsps.calls) == 4


def test_a_pending_login_keeps_its_backoff_across_processes(
    rsps, session, endpoints, clock
):
    # `--resume --once` runs one poll per process: the failure count travels with the
    # stored authorization, so a script looping on a down server still backs off.
    rsps.add(
        responses.POST, TOKEN_URL, body=requests.exceptions.ConnectionError("down")
    )
    auth = authorization(clock)

    for expected_wait in (10, 20, 40):
        outcome = device_flow.poll_once(session, endpoints, auth, now=clock.now)
        auth = DeviceAuthorization.from_json(outcome.authorization.to_json())
        assert auth.next_poll_at - clock.now() == expected_wait


def test_an_expired_code_is_not_polled(rsps, session, endpoints, clock):
    auth = authorization(clock, expires_at=clock.now() + 12)

    with pytest.raises(DeviceCodeExpired):
        device_flow.poll_once(session, endpoints, auth, now=lambda: clock.now() + 12)
    assert len(rsps.calls) == 0

    # Waiting: polls at +5 and +10; the next one would fall after expiry.
    script_token_endpoint(rsps, error("authorization_pending"))
    with pytest.raises(DeviceCodeExpired):
        wait(session, endpoints, auth, clock)
    assert len(rsps.calls) == 2


def test_wait_with_a_deadline_returns_pending(rsps, session, endpoints, clock):
    seen: list[DeviceAuthorization] = []
    script_token_endpoint(rsps, error("authorization_pending"))
    auth = authorization(clock)

    early = wait(session, endpoints, auth, clock, deadline=clock.now() + 3)
    assert isinstance(early, Pending)
    assert early.authorization == auth
    assert len(rsps.calls) == 0 and clock.sleeps == []

    later = wait(
        session, endpoints, auth, clock, deadline=clock.now() + 8, on_wait=seen.append
    )
    assert isinstance(later, Pending)
    assert len(rsps.calls) == 1
    assert later.authorization.next_poll_at == clock.now() + 5
    assert later.authorization.device_code == auth.device_code
    assert len(seen) == 1


# -- the pending authorization as data


def test_device_authorization_json_round_trip(clock):
    auth = authorization(clock, code_verifier="verifier-" + "x" * 50, interval=10.0)

    again = DeviceAuthorization.from_json(auth.to_json())

    assert again == auth
    assert again.code_verifier == auth.code_verifier
    assert again.next_poll_at == auth.next_poll_at


def test_device_authorization_json_ignores_unknown_fields(clock):
    data = json.loads(authorization(clock).to_json())
    data["added_in_a_later_version"] = True

    assert DeviceAuthorization.from_json(json.dumps(data)) == authorization(clock)


def test_repr_hides_the_device_code_and_verifier(clock):
    auth = authorization(clock, code_verifier="pkce-verifier-abcdefgh")
    shown = repr(auth) + str(auth) + repr(Pending(auth))

    assert "dc-secret-0123456789" not in shown
    assert "pkce-verifier-abcdefgh" not in shown
    assert "ABCD-EFGH" in shown  # the user code is meant to be shown


def test_a_non_json_answer_is_a_login_error_not_a_crash(
    rsps, session, endpoints, clock
):
    rsps.add(responses.POST, DEVICE_URL, body="<html>proxy login</html>", status=200)
    with pytest.raises(LoginError, match="not JSON"):
        device_flow.request_authorization(
            session, endpoints, "assetctl-cli", "openid", use_pkce=False, now=clock.now
        )

    rsps.add(responses.POST, TOKEN_URL, body="<html>proxy login</html>", status=200)
    with pytest.raises(LoginError, match="holds no token"):
        device_flow.poll_once(session, endpoints, authorization(clock), now=clock.now)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"user_code": "AB\x1b]52;c;aGk=\x07CD"}, "user code"),
        ({"verification_uri": "file:///etc/passwd"}, "verification link"),
        ({"verification_uri_complete": "https://x/\x1b[2J"}, "verification link"),
        ({"expires_in": "soon"}, "'expires_in'"),
        ({"interval": -1}, "'interval'"),
        ({"user_code": 7}, "'user_code'"),
    ],
)
def test_a_device_answer_unfit_for_a_terminal_or_a_browser_is_refused(
    rsps, session, endpoints, clock, changes, words
):
    rsps.add(responses.POST, DEVICE_URL, json={**DEVICE_ANSWER, **changes})

    with pytest.raises(LoginError, match=words):
        device_flow.request_authorization(
            session, endpoints, "assetctl-cli", "openid", use_pkce=False, now=clock.now
        )
