"""Redaction: at DEBUG, through the handler `configure` installs, nothing secret reaches
the output; the HTTP dump masks a whole token exchange. Secret values are fresh per test
(never registered unless the test says so), so an earlier test cannot make one pass."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
import responses

from assetctl import logs
from assetctl.config import Settings
from assetctl.http import make_session

from .conftest import TOKEN_URL


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def fake_jwt() -> str:
    return (
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
        + uuid.uuid4().hex
        + "eyJzdWIiOiJkZW1vIn0.c2ln"
    )


def debug_logging(capsys):
    """Log through the real set-up at DEBUG; returns a function giving stderr so far.
    Called in the test body: pytest swaps sys.stderr between setup and call."""
    logs.configure(2)

    def read() -> str:
        return capsys.readouterr().err

    return read


def test_debug_output_masks_jwts_and_bearer_values(capsys):
    stderr_so_far = debug_logging(capsys)
    token, opaque = fake_jwt(), fresh("opaque")
    log = logging.getLogger("assetctl.test")

    log.debug("got %s", token)
    log.debug("Authorization: Bearer %s", opaque)
    log.debug("header authorization: bearer %s", opaque + "x")
    log.info("basic: Basic %s", "YXNzZXRjdGw6c2VjcmV0LXZhbHVl")

    out = stderr_so_far()
    assert token not in out and token[:40] not in out
    assert opaque not in out
    assert "YXNzZXRjdGw6c2VjcmV0LXZhbHVl" not in out
    assert out.count(logs.MASK) >= 4
    assert "assetctl: DEBUG assetctl.test: got" in out


@pytest.mark.parametrize(
    "field",
    [
        "access_token",
        "refresh_token",
        "id_token",
        "device_code",
        "client_secret",
        "password",
    ],
)
def test_token_fields_are_masked_in_json_form_and_repr(capsys, field):
    stderr_so_far = debug_logging(capsys)
    value = fresh("v")
    log = logging.getLogger("assetctl.test")

    log.debug("json: %s", json.dumps({field: value, "client_id": "visible-client"}))
    log.debug("compact json: %s", json.dumps({field: value}, separators=(",", ":")))
    log.debug(
        "form: grant_type=refresh_token&%s=%s&client_id=visible-client", field, value
    )
    log.debug("repr: %r", {field: value})

    out = stderr_so_far()
    assert value not in out
    assert "visible-client" in out and "grant_type=refresh_token" in out


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "with,comma",
        'quote"inside',
        "brace}here",
        "amp&ersand",
    ],
)
def test_json_passwords_are_masked_whole(capsys, password):
    stderr_so_far = debug_logging(capsys)
    logging.getLogger("assetctl.test").debug(
        "body: %s",
        json.dumps({"username": "demo", "password": password, "totp": "123"}),
    )

    out = stderr_so_far()
    for fragment in re.findall(r"[a-z]{3,}", password):
        assert fragment not in out
    assert '"username": "demo"' in out and '"totp": "123"' in out


def test_a_clipped_json_value_is_still_masked(capsys):
    stderr_so_far = debug_logging(capsys)
    value = fresh("rt")
    logging.getLogger("assetctl.test").debug('body: {"refresh_token": "%s', value)
    assert value not in stderr_so_far()


def test_registered_opaque_secrets_are_masked_anywhere(capsys):
    stderr_so_far = debug_logging(capsys)
    secret = fresh("opaque-refresh")
    logs.register_secret(secret)
    log = logging.getLogger("assetctl.test")

    log.warning("something odd about %s in the middle of text", secret)
    try:
        raise RuntimeError(f"server said no to {secret}")
    except RuntimeError:
        log.exception("refresh failed")

    out = stderr_so_far()
    assert secret not in out
    assert "server said no to" in out  # the traceback is there, masked


def test_short_values_are_not_registered():
    logs.register_secret("abc")
    logs.register_secret(None)
    assert logs.redact("abc def") == "abc def"


def test_the_filter_leaves_plain_messages_alone(capsys):
    stderr_so_far = debug_logging(capsys)
    logging.getLogger("assetctl.test").info(
        "access token expires in %d s, refreshing", 42
    )
    assert "access token expires in 42 s, refreshing" in stderr_so_far()


def test_http_exchange_dump_contains_no_secret(caplog, rsps):
    access, refresh, id_token = fake_jwt(), fresh("opaque-refresh"), fake_jwt()
    old_refresh, client_secret, cookie = (
        fresh("old-refresh"),
        fresh("cs"),
        fresh("cookie"),
    )
    bearer = fake_jwt()
    rsps.add(
        responses.POST,
        TOKEN_URL,
        json={
            "access_token": access,
            "expires_in": 300,
            "refresh_token": refresh,
            "id_token": id_token,
            "token_type": "Bearer",
        },
        headers={"Set-Cookie": f"KC_SESSION={cookie}; Path=/"},
    )
    caplog.set_level(logging.DEBUG)

    make_session(Settings()).post(
        TOKEN_URL,
        data={
            "grant_type": "refresh_token",
            "refresh_token": old_refresh,
            "client_id": "assetctl-cli",
            "client_secret": client_secret,
        },
        headers={"Authorization": f"Bearer {bearer}", "Cookie": f"KC_RESTART={cookie}"},
    )

    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "POST " + TOKEN_URL in text and "-> 200" in text  # the dump ran
    assert "response body" in text and "request body" in text
    for secret in (
        access,
        refresh,
        id_token,
        old_refresh,
        client_secret,
        cookie,
        bearer,
    ):
        assert secret not in text
    assert "assetctl-cli" in text


def test_http_dump_is_silent_above_debug(caplog, rsps):
    rsps.add(responses.GET, TOKEN_URL, json={})
    caplog.set_level(logging.INFO)

    make_session(Settings()).get(TOKEN_URL)

    assert not [r for r in caplog.records if r.name == "assetctl.http"]


def test_scrub_masks_secrets_and_shows_control_characters_as_escapes():
    from assetctl.errors import ApiError
    from assetctl.logs import scrub

    text = "bad \x1b]52;c;aGk=\x07 Bearer abc.def-ghi\nsecond line"
    assert scrub(text) == "bad \\x1b]52;c;aGk=\\x07 Bearer [redacted]\\nsecond line"
    # Every error's message goes through it, whoever prints it.
    assert str(ApiError("HTTP 400: Bearer abc.def", hint="x\x1b[2J")) == (
        "HTTP 400: Bearer [redacted]; x\\x1b[2J"
    )
