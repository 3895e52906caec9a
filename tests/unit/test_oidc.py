"""What the OIDC helpers make of server answers that are well-formed HTTP but unusable:
each is a one-line LoginError or ConfigError, never a crash. Scripted with
`responses`."""

from __future__ import annotations

import pytest
import requests
import responses

from assetctl.auth import oidc
from assetctl.auth.manager import read_client_secret
from assetctl.config import Settings
from assetctl.errors import ConfigError, LoginError
from assetctl.http import make_session

from .conftest import DISCOVERY_URL, ISSUER, TOKEN_URL


@pytest.fixture
def session() -> requests.Session:
    return make_session(Settings(timeout=5))


def answer(rsps, body, url: str = TOKEN_URL) -> requests.Response:
    rsps.add(responses.POST, url, body=body, content_type="application/json")
    return requests.post(url, timeout=5)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"access_token": "a", "expires_in": "abc"}', "unusable 'expires_in'"),
        ('{"access_token": "a", "expires_in": -5}', "unusable 'expires_in'"),
        ('{"access_token": "a", "refresh_expires_in": [1]}', "'refresh_expires_in'"),
        ('{"access_token": 7}', "holds no token"),
        ("[" * 100_000 + "]" * 100_000, "holds no token"),  # deeper than recursion
    ],
)
def test_an_unusable_token_answer_is_a_login_error(rsps, body, words):
    with pytest.raises(LoginError, match=words):
        oidc.token_body(answer(rsps, body))


def test_expiry_given_as_a_numeric_string_is_accepted(rsps):
    body = oidc.token_body(answer(rsps, '{"access_token": "a", "expires_in": "300"}'))
    assert body["expires_in"] == 300.0


@pytest.mark.parametrize(
    "doc",
    [
        {"token_endpoint": 5},
        {"token_endpoint": TOKEN_URL, "jwks_uri": ["x"]},
        {"token_endpoint": TOKEN_URL, "device_authorization_endpoint": {"a": 1}},
    ],
)
def test_discovery_with_endpoints_that_are_no_urls_is_a_config_error(
    rsps, session, doc
):
    rsps.add(responses.GET, DISCOVERY_URL, json={"issuer": ISSUER, **doc})
    with pytest.raises(ConfigError, match="is not an OpenID configuration"):
        oidc.discover(session, ISSUER)


def test_a_client_secret_file_that_is_not_text_is_a_config_error(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_client_secret({}, str(path))
