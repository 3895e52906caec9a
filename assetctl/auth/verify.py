"""Checking an access token the way an API would: signature against the realm's JWKS,
issuer, expiry and, when one is named, audience."""

from __future__ import annotations

from typing import Any

import jwt
import requests

from ..errors import AuthError, ConfigError
from ..http import send
from .manager import Authenticator

ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
]


def verify_access_token(
    authn: Authenticator, token: str, audience: str | None
) -> dict[str, Any]:
    """The token's claims once it checks out; `audience=None` checks no audience."""
    endpoints = authn.endpoints()
    if not endpoints.jwks_uri:
        raise ConfigError(f"{endpoints.issuer} publishes no signing keys (jwks_uri)")

    key = signing_key(authn, endpoints.jwks_uri, token)
    try:
        claims: dict[str, Any] = dict(
            jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=endpoints.issuer,
                audience=audience,
                options={"verify_aud": audience is not None},
                leeway=10,
            )
        )
        return claims
    except jwt.InvalidAudienceError as exc:
        raise AuthError(
            f"the access token is not meant for audience '{audience}'",
            hint="check --audience, or the client's audience mapper in Keycloak",
        ) from exc
    except jwt.PyJWTError as exc:
        raise AuthError(
            f"the access token does not verify: {exc}", hint="run `assetctl login`"
        ) from exc


def signing_key(authn: Authenticator, jwks_uri: str, token: str) -> jwt.PyJWK:
    """The realm key that signed `token`, fetched through assetctl's own session (its
    CA bundle, trust store, proxies and timeout; PyJWKClient would use urllib's)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise AuthError(f"the access token is not a JWT: {exc}") from exc

    response = send(authn.session, "GET", jwks_uri)
    try:
        response.raise_for_status()
        keys = jwt.PyJWKSet.from_dict(response.json())
    except (requests.HTTPError, ValueError, RecursionError, jwt.PyJWTError) as exc:
        raise AuthError(
            f"cannot read the realm's signing keys at {jwks_uri}: {exc}",
            hint="check the server URL and realm",
        ) from exc

    for key in keys.keys:
        if key.key_id == kid and (key.public_key_use in (None, "sig")):
            return key
    raise AuthError(
        f"the realm publishes no key with the token's key id {kid!r}",
        hint="the token comes from another realm or an older key; run `assetctl login`",
    )
