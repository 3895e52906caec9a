"""Bearer-token checks: JWT signature against the issuer's JWKS, claims, roles.

Answers who is calling (`Principal`) or raises a `Problem` carrying the RFC 6750
`WWW-Authenticate` challenge. Tokens are never logged or echoed back.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

import jwt

from .problems import Problem

log = logging.getLogger(__name__)

REALM = "asset-api"
LEEWAY_SECONDS = 10
# What Keycloak can sign access tokens with; never HS* (the JWKS holds public keys).
ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
# Keycloak marks access tokens `typ: Bearer`; ID and refresh tokens say otherwise.
ACCESS_TOKEN_TYPES = ("bearer",)
# RFC 6750 3: error_description may hold printable ASCII except `"` and `\`.
UNQUOTABLE = re.compile(r"[^ !#-\[\]-~]")


@dataclass(frozen=True)
class Principal:
    """The caller behind a verified token."""

    subject: str
    username: str
    roles: frozenset[str]


class InvalidToken(Exception):
    """The token was presented but cannot be accepted; the message is safe to show."""


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The `WWW-Authenticate` value; no error attributes when no token was sent."""
    parts = [f'Bearer realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{UNQUOTABLE.sub("", description)}"')
    return ", ".join(parts)


def unauthorized(description: str | None) -> Problem:
    error = "invalid_token" if description else None
    detail = description or "this endpoint needs an `Authorization: Bearer` token"
    return Problem(
        401, detail, headers={"WWW-Authenticate": challenge(error, description)}
    )


def forbidden(role: str) -> Problem:
    description = f"the realm role {role} is needed to change assets"
    return Problem(
        403,
        description,
        headers={"WWW-Authenticate": challenge("insufficient_scope", description)},
    )


def bearer_token(header: str | None) -> str | None:
    """The token from an `Authorization` header, or None if no Bearer one was sent."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def make_jwks_client(jwks_url: str) -> jwt.PyJWKClient:
    options: dict[str, Any] = {"cache_keys": True, "lifespan": 300, "timeout": 5}
    # PyJWT 2.12+ waits 30 s by default before refetching for an unknown kid;
    # a realm whose keys were just rotated should not lock tests out that long.
    if "cooldown_duration" in inspect.signature(jwt.PyJWKClient).parameters:
        options["cooldown_duration"] = 2
    return jwt.PyJWKClient(jwks_url, **options)


class TokenVerifier:
    """Verifies access tokens from one issuer for one audience."""

    def __init__(self, issuer: str, jwks_url: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks = make_jwks_client(jwks_url)

    def verify(self, token: str) -> Principal:
        """The token's principal; raises `InvalidToken` or a 503 `Problem`."""
        try:
            claims = self._decode(token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("cannot fetch the JWKS: %s", type(exc).__name__)
            raise Problem(503, "the token issuer's keys cannot be fetched") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(describe(exc)) from exc
        return principal_from(claims)

    def _decode(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(f"algorithm {algorithm} is not accepted")
        if not header.get("kid"):
            raise InvalidToken("the token names no signing key (kid)")

        # Passing the bare key (not the PyJWK) lets the token's own accepted
        # algorithm decide; a key of the wrong type fails in prepare_key.
        jwk = self._jwks.get_signing_key(header["kid"])
        return jwt.decode(
            token,
            jwk.key,
            algorithms=[algorithm],
            audience=self.audience,
            issuer=self.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud"]},
        )


def describe(exc: jwt.PyJWTError) -> str:
    """A short reason for a rejected token, never containing token material."""
    reasons = [
        (jwt.ExpiredSignatureError, "the token has expired"),
        (jwt.ImmatureSignatureError, "the token is not valid yet"),
        (jwt.InvalidIssuerError, "the token comes from another issuer"),
        (jwt.InvalidAudienceError, "the token is not meant for this API (audience)"),
        (jwt.InvalidSignatureError, "the token's signature does not verify"),
        (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
        (jwt.PyJWKClientError, "the token's signing key is unknown"),
        (jwt.InvalidKeyError, "the token's algorithm does not match its key"),
        (jwt.DecodeError, "the token is malformed"),
    ]
    for kind, reason in reasons:
        if isinstance(exc, kind):
            return reason
    return "the token is invalid"


def principal_from(claims: dict[str, Any]) -> Principal:
    token_type = claims.get("typ")
    if token_type is not None and str(token_type).lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken("the token is not an access token")

    subject = claims.get("sub") or claims.get("preferred_username")
    if not subject:
        raise InvalidToken("the token names no subject")

    realm_access = claims.get("realm_access") or {}
    roles = realm_access.get("roles") if isinstance(realm_access, dict) else None
    return Principal(
        subject=str(subject),
        username=str(claims.get("preferred_username") or subject),
        roles=frozenset(r for r in roles or () if isinstance(r, str)),
    )
