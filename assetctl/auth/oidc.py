"""The OpenID Connect calls other than the device flow: discovery, refresh, client
credentials, logout and revocation. Plain functions over a requests session; nothing
here prints or stores.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import ConfigError, LoginError, NetworkError, SessionEnded
from ..http import send
from ..logs import register_secret
from .tokens import TokenSet

log = logging.getLogger(__name__)


ENDPOINT_NAMES = (
    "issuer",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "end_session_endpoint",
    "jwks_uri",
)


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    token: str
    # Where discovery was asked (the configured server URL and realm). It can differ
    # from `issuer` behind a proxy or when Keycloak's --hostname names another host.
    realm_url: str = ""
    device_authorization: str | None = None
    revocation: str | None = None
    end_session: str | None = None
    jwks_uri: str | None = None
    pkce_methods: tuple[str, ...] = ()


def discover(session: requests.Session, issuer: str) -> Endpoints:
    """Read the realm's OpenID configuration."""
    url = f"{issuer}/.well-known/openid-configuration"
    response = send(session, "GET", url)
    if response.status_code == 404:
        raise ConfigError(
            f"no realm at {issuer} (discovery answered 404)",
            hint="check the server URL and realm name",
        )
    if 400 <= response.status_code < 500:
        raise ConfigError(
            f"{issuer} does not look like a Keycloak realm "
            f"(discovery answered HTTP {response.status_code})",
            hint="check the server URL: it should be Keycloak's, not the API's",
        )
    if response.status_code >= 500:
        raise NetworkError(
            f"OpenID discovery at {issuer} answered HTTP {response.status_code}"
        )
    try:
        doc = response.json()
        token = doc["token_endpoint"]
        if not isinstance(token, str) or not all(
            isinstance(doc.get(name), str | None) for name in ENDPOINT_NAMES
        ):
            raise TypeError("an endpoint that is not a URL")
    except (ValueError, RecursionError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{url} is not an OpenID configuration",
            hint="check the server URL and realm",
        ) from exc

    if doc.get("issuer") and doc["issuer"].rstrip("/") != issuer.rstrip("/"):
        log.warning(
            "the server calls itself %s, not %s: tokens will carry its name",
            doc["issuer"],
            issuer,
        )
    return Endpoints(
        issuer=doc.get("issuer", issuer),
        realm_url=issuer,
        token=token,
        device_authorization=doc.get("device_authorization_endpoint"),
        revocation=doc.get("revocation_endpoint"),
        end_session=doc.get("end_session_endpoint"),
        jwks_uri=doc.get("jwks_uri"),
        pkce_methods=tuple(doc.get("code_challenge_methods_supported") or ()),
    )


def post_form(
    session: requests.Session, url: str, data: Mapping[str, str], auth: Any = None
) -> requests.Response:
    return send(
        session,
        "POST",
        url,
        data=dict(data),
        auth=auth,
        headers={"Accept": "application/json"},
    )


def oauth_error(response: requests.Response) -> tuple[str, str]:
    """(error, description) from an OAuth error answer, tolerating non-JSON bodies."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return f"http_{response.status_code}", response.reason or ""
    if not isinstance(body, dict):
        return f"http_{response.status_code}", ""
    return str(body.get("error", f"http_{response.status_code}")), str(
        body.get("error_description", "")
    )


def token_body(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a successful token answer; anything else is a `LoginError`."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise LoginError(
            f"the server's answer at {response.url} holds no token",
            hint="check the server URL; a proxy or a login page may be in the way",
        )
    for name in ("expires_in", "refresh_expires_in"):
        if body.get(name) is None:
            continue
        try:  # some servers send "3600" as a string
            seconds = float(body[name])
        except (TypeError, ValueError):
            seconds = math.nan
        if not 0 <= seconds < math.inf or isinstance(body[name], bool):
            raise LoginError(
                f"the server's token answer at {response.url} has an unusable '{name}'",
                hint="report it to the server's administrators",
            )
        body = {**body, name: seconds}
    return body


def refresh(
    session: requests.Session,
    endpoints: Endpoints,
    tokens: TokenSet,
    client_secret: str | None = None,
) -> TokenSet:
    """Trade the refresh token for a new set; the server may rotate it."""
    if not tokens.refresh_token:
        raise SessionEnded(
            "the access token expired and there is no refresh token",
            hint="run `assetctl login`",
        )
    data = {
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "client_id": tokens.client_id,
    }
    if client_secret:
        data["client_secret"] = client_secret
    response = post_form(session, endpoints.token, data)
    if response.status_code == 200:
        return TokenSet.from_response(
            token_body(response),
            issuer=tokens.issuer,
            realm_url=tokens.realm_url,
            client_id=tokens.client_id,
            previous=tokens,
        )

    error, description = oauth_error(response)
    if error == "invalid_grant":
        raise SessionEnded(
            f"your session ended ({description or 'refresh token expired or revoked'})",
            hint="run `assetctl login`",
        )
    if response.status_code >= 500:
        raise NetworkError(
            f"the token endpoint failed with HTTP {response.status_code}",
            hint="try again later",
        )
    raise LoginError(
        f"refreshing the token failed: {error} {description}".strip(),
        hint="run `assetctl login`",
    )


def client_credentials(
    session: requests.Session,
    endpoints: Endpoints,
    client_id: str,
    secret: str,
    scope: str,
) -> TokenSet:
    """Sign a service account in (OAuth 2.0 client credentials grant)."""
    register_secret(secret)
    data = {"grant_type": "client_credentials", "scope": scope}
    response = post_form(session, endpoints.token, data, auth=(client_id, secret))
    if response.status_code == 200:
        return TokenSet.from_response(
            token_body(response),
            issuer=endpoints.issuer,
            realm_url=endpoints.realm_url,
            client_id=client_id,
        )

    error, description = oauth_error(response)
    if error in {"invalid_client", "unauthorized_client"}:
        raise LoginError(
            f"the server refused client '{client_id}': {description or error}",
            hint="check the client id and secret, and that the client has a "
            "service account",
        )
    raise LoginError(
        f"client credentials sign-in failed: {error} {description}".strip()
    )


def end_session(
    session: requests.Session,
    endpoints: Endpoints,
    tokens: TokenSet,
    client_secret: str | None = None,
) -> str:
    """End the session on the server; returns how ("logout" or "revocation").

    Keycloak's logout endpoint with the refresh token ends only this session; RFC 7009
    revocation (the fallback for servers without it) may end every session of the user
    for this client (Keycloak 26, checked 2026-12).
    """
    if not tokens.refresh_token:
        raise LoginError("nothing to end on the server: no refresh token is stored")
    data = {"client_id": tokens.client_id, "refresh_token": tokens.refresh_token}
    if client_secret:
        data["client_secret"] = client_secret

    if endpoints.end_session:
        response = post_form(session, endpoints.end_session, data)
        if response.status_code in (200, 204):
            return "logout"
        error, description = oauth_error(response)
        if error == "invalid_grant":
            return "already ended"
        log.info(
            "logout endpoint answered %s (%s); trying revocation",
            response.status_code,
            error,
        )

    if endpoints.revocation:
        revoke = {
            "client_id": tokens.client_id,
            "token": tokens.refresh_token,
            "token_type_hint": "refresh_token",
        }
        if client_secret:
            revoke["client_secret"] = client_secret
        response = post_form(session, endpoints.revocation, revoke)
        if response.status_code == 200:
            return "revocation"
        error, description = oauth_error(response)
        raise LoginError(
            f"the server refused to revoke the token: {error} {description}".strip()
        )
    raise LoginError("the server offers neither logout nor revocation")
