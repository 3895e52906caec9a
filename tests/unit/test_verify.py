"""`token --verify`: the realm's keys are fetched through assetctl's own session (its CA
bundle, trust store, proxies and timeout), and the token is checked for signature,
issuer, expiry and, when named, audience. Keycloak is scripted with `responses`."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa

from assetctl.auth.manager import Authenticator
from assetctl.auth.verify import verify_access_token
from assetctl.config import Settings
from assetctl.errors import AuthError
from assetctl.http import make_session

from .conftest import DISCOVERY_URL, ISSUER

JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"
# A fractional timeout: urllib's would have been cut to int(0.5) == 0.
SETTINGS = Settings(
    server_url="https://kc.example.test", realm="demo", client_id="cli", timeout=0.5
)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def signed(kid: str = "k1", **claims) -> str:
    body = {"iss": ISSUER, "aud": ["asset-api"], "exp": int(time.time()) + 300}
    return jwt.encode({**body, **claims}, KEY, algorithm="RS256", headers={"kid": kid})


def serve_realm(rsps, **jwks_answer) -> None:
    rsps.add(
        responses.GET,
        DISCOVERY_URL,
        json={
            "issuer": ISSUER,
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": JWKS_URL,
        },
    )
    rsps.add(responses.GET, JWKS_URL, **jwks_answer)


@pytest.fixture
def realm(rsps):
    serve_realm(rsps, json={"keys": [public_jwk("k1")]})
    return rsps


def authenticator() -> Authenticator:
    return Authenticator(SETTINGS, session=make_session(SETTINGS), env={})


def test_a_good_token_verifies_through_the_session(realm):
    claims = verify_access_token(authenticator(), signed(), "asset-api")

    assert claims["iss"] == ISSUER
    assert any(call.request.url == JWKS_URL for call in realm.calls)


def test_no_audience_named_checks_none(realm):
    assert (
        verify_access_token(authenticator(), signed(aud="other"), None)["aud"]
        == "other"
    )


# Tokens are signed when the test runs, not at collection: a suite longer than their
# five minutes must not turn "wrong audience" into "expired".
@pytest.mark.parametrize(
    ("make_token", "audience", "words"),
    [
        (lambda: signed(aud="other"), "asset-api", "not meant for audience"),
        (
            lambda: signed(iss="https://evil.example.test/realms/demo"),
            None,
            "does not verify",
        ),
        (lambda: signed(exp=int(time.time()) - 3600), None, "does not verify"),
        (lambda: signed(kid="gone"), None, "no key with the token's key id"),
        (lambda: "not-a-jwt", None, "not a JWT"),
    ],
)
def test_bad_tokens_are_auth_errors_saying_why(realm, make_token, audience, words):
    token = make_token()
    with pytest.raises(AuthError, match=words):
        verify_access_token(authenticator(), token, audience)


def test_a_token_signed_by_another_key_does_not_verify(realm):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": ISSUER, "exp": int(time.time()) + 300},
        other,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with pytest.raises(AuthError, match="does not verify"):
        verify_access_token(authenticator(), forged, None)


def test_unreadable_keys_are_one_auth_error(rsps):
    serve_realm(rsps, body="<html>login</html>", status=200)
    with pytest.raises(AuthError, match="cannot read the realm's signing keys"):
        verify_access_token(authenticator(), signed(), None)
