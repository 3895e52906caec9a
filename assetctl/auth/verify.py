"""Checking an access token the way an API would: signature against the realm's JWKS,
issuer, expiry and, when one is named, audience."""

from __future__ import annotations

import os
from typing import Any

import jwt

from ..errors import AuthError, ConfigError
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
    audience = audience or os.environ.get("ASSETCTL_AUDIENCE") or None
    endpoints = authn.endpoints()
    if not endpoints.jwks_uri:
        raise ConfigError(f"{endpoints.issuer} publishes no signing keys (jwks_uri)")

    client = jwt.PyJWKClient(endpoints.jwks_uri, timeout=int(authn.settings.timeout))
    try:
        key = client.get_signing_key_from_jwt(token)
        return dict(
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
    except jwt.PyJWKClientError as exc:
        raise AuthError(f"cannot fetch the realm's signing keys: {exc}") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthError(
            f"the access token is not meant for audience '{audience}'",
            hint="check --audience, or the client's audience mapper in Keycloak",
        ) from exc
    except jwt.PyJWTError as exc:
        raise AuthError(
            f"the access token does not verify: {exc}", hint="run `assetctl login`"
        ) from exc
