"""The OAuth 2.0 Device Authorization Grant (RFC 8628), protocol only.

It asks for a device code and polls for tokens; it neither prints nor stores anything.
Callers show the code (`on_wait`) and keep the result. A pending authorization is a
plain frozen dataclass so that `login --no-wait` can store it and `--resume` go on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import requests

from ..errors import AccessDenied, DeviceCodeExpired, LoginError, NetworkError
from ..logs import register_secret
from .oidc import Endpoints, oauth_error, post_form, token_body
from .tokens import TokenSet, stored_fields

log = logging.getLogger(__name__)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0  # RFC 8628 section 3.5
MAX_BACKOFF = 60.0
USER_CODE = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}")  # any printable text
WEB_LINK = re.compile(r"https?://[!-~]+")  # printable ASCII, no spaces


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float
    interval: float
    issuer: str
    client_id: str
    code_verifier: str | None = field(default=None, repr=False)
    # Earliest moment the next poll may go out: kept across processes (`--resume`).
    next_poll_at: float = 0.0
    # Polls in a row that got no answer; each one doubles the wait (RFC 8628 s. 3.5).
    failures: int = 0
    # The realm URL the login was started at, when it differs from `issuer`.
    realm_url: str = ""

    def __post_init__(self) -> None:
        register_secret(self.device_code)
        register_secret(self.code_verifier)

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeviceAuthorization:
        return cls(**stored_fields(cls, text))


@dataclass(frozen=True)
class Pending:
    """The person has not approved yet; poll again no sooner than `next_poll_at`."""

    authorization: DeviceAuthorization


def request_authorization(
    session: requests.Session,
    endpoints: Endpoints,
    client_id: str,
    scope: str,
    *,
    use_pkce: bool = True,
    now: Callable[[], float] = time.time,
) -> DeviceAuthorization:
    """Ask the server for a device code and a user code."""
    if not endpoints.device_authorization:
        raise LoginError(
            f"{endpoints.issuer} does not offer the device authorization grant",
            hint="ask the server's administrators to enable it for the client",
        )
    data = {"client_id": client_id, "scope": scope}
    verifier = None
    if use_pkce and "S256" in endpoints.pkce_methods:
        verifier = secrets.token_urlsafe(48)
        data["code_challenge"] = _s256(verifier)
        data["code_challenge_method"] = "S256"

    response = post_form(session, endpoints.device_authorization, data)
    if response.status_code != 200:
        raise _authorization_error(response, client_id)

    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise LoginError(
            "the device authorization answer from "
            f"{endpoints.device_authorization} is not JSON",
            hint="check the server URL; a proxy or a login page may be in the way",
        )
    started = now()
    interval = _seconds(body, "interval", 5)
    try:
        authorization = DeviceAuthorization(
            device_code=_text(body, "device_code"),
            user_code=_text(body, "user_code"),
            verification_uri=_text(
                body,
                "verification_uri"
                if "verification_uri" in body
                else "verification_url",
            ),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_at=started + _seconds(body, "expires_in", 600),
            interval=interval,
            issuer=endpoints.issuer,
            realm_url=endpoints.realm_url,
            client_id=client_id,
            code_verifier=verifier,
            next_poll_at=started + interval,
        )
    except KeyError as exc:
        raise LoginError(
            f"the device authorization answer lacks '{exc.args[0]}'"
        ) from exc
    _check_shown_to_a_person(authorization)
    return authorization


def _text(body: dict, name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise LoginError(f"the device authorization answer's '{name}' is not text")
    return value


def _seconds(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise LoginError(
            f"the device authorization answer's '{name}' is not a number of seconds"
        )
    return float(value)


def _check_shown_to_a_person(authorization: DeviceAuthorization) -> None:
    """The code and links go to a terminal and maybe a browser: they must be plain
    text and web links, not escape sequences or `file:` URLs a server slipped in."""
    if not USER_CODE.fullmatch(authorization.user_code):
        raise LoginError("the server sent a user code with characters no code has")
    for link in (
        authorization.verification_uri,
        authorization.verification_uri_complete,
    ):
        if link is None:
            continue
        if not isinstance(link, str) or not WEB_LINK.fullmatch(link):
            raise LoginError(
                "the server sent a verification link that is not a plain http(s) URL"
            )


def poll_once(
    session: requests.Session,
    endpoints: Endpoints,
    authorization: DeviceAuthorization,
    *,
    now: Callable[[], float] = time.time,
) -> TokenSet | Pending:
    """One poll of the token endpoint; raises when the login ended without tokens."""
    if authorization.seconds_left(now()) <= 0:
        raise DeviceCodeExpired(
            "the device code expired before it was approved",
            hint="run `assetctl login` again",
        )
    data = {
        "grant_type": DEVICE_GRANT,
        "device_code": authorization.device_code,
        "client_id": authorization.client_id,
    }
    if authorization.code_verifier:
        data["code_verifier"] = authorization.code_verifier

    try:
        response = post_form(session, endpoints.token, data)
    except NetworkError as exc:
        # A blip while the person is still typing must not lose the login.
        log.warning("polling failed (%s); trying again", exc.message)
        return _backoff(authorization, now())

    if response.status_code == 200:
        return TokenSet.from_response(
            token_body(response),
            issuer=authorization.issuer,
            realm_url=authorization.realm_url,
            client_id=authorization.client_id,
            now=now(),
        )
    return _pending_or_raise(response, authorization, now())


def wait_for_tokens(
    session: requests.Session,
    endpoints: Endpoints,
    authorization: DeviceAuthorization,
    *,
    deadline: float | None = None,
    on_wait: Callable[[DeviceAuthorization], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> TokenSet | Pending:
    """Poll at the server's pace until approved, denied, expired or past `deadline`."""
    while True:
        delay = max(0.0, authorization.next_poll_at - now())
        if deadline is not None and now() + delay > deadline:
            return Pending(authorization)
        if on_wait:
            on_wait(authorization)
        sleep(delay)

        outcome = poll_once(session, endpoints, authorization, now=now)
        if isinstance(outcome, TokenSet):
            return outcome
        authorization = outcome.authorization


def _pending_or_raise(
    response: requests.Response, authorization: DeviceAuthorization, at: float
) -> Pending:
    error, description = oauth_error(response)
    if error == "authorization_pending":
        return Pending(
            replace(authorization, next_poll_at=at + authorization.interval, failures=0)
        )
    if error == "slow_down" or response.status_code == 429:
        interval = authorization.interval + SLOW_DOWN_STEP
        log.info("server asked to slow down; polling every %.0f s", interval)
        return Pending(
            replace(
                authorization, interval=interval, next_poll_at=at + interval, failures=0
            )
        )
    if error == "access_denied":
        raise AccessDenied(
            "the login was denied in the browser",
            hint="run `assetctl login` to try again",
        )
    if error == "expired_token" or (
        error == "invalid_grant" and authorization.seconds_left(at) <= 0
    ):
        # Keycloak (26.x, checked 2026-12) says expired_token only for about interval +
        # 10 s past expiry, and invalid_grant after that.
        raise DeviceCodeExpired(
            "the device code expired before it was approved",
            hint="run `assetctl login` again",
        )
    if response.status_code >= 500:
        log.warning(
            "token endpoint answered HTTP %s; trying again", response.status_code
        )
        return _backoff(authorization, at)
    raise LoginError(
        f"the server ended the login: {error}"
        + (f" ({description})" if description else ""),
        hint="run `assetctl login` again",
    )


def _backoff(authorization: DeviceAuthorization, at: float) -> Pending:
    # Doubling from the interval, capped so that a server coming back within the
    # code's lifetime is still polled in time for the person who approved.
    failures = authorization.failures + 1
    wait = min(max(authorization.interval, 1.0) * 2**failures, MAX_BACKOFF)
    return Pending(replace(authorization, next_poll_at=at + wait, failures=failures))


def _authorization_error(response: requests.Response, client_id: str) -> LoginError:
    error, description = oauth_error(response)
    if error == "invalid_client":
        return LoginError(
            f"the server does not know client '{client_id}'",
            hint="check --client-id / ASSETCTL_CLIENT_ID and the realm",
        )
    if error == "unauthorized_client":
        return LoginError(
            f"client '{client_id}' may not use the device flow",
            hint="enable 'OAuth 2.0 Device Authorization Grant' on the client "
            "in Keycloak",
        )
    return LoginError(
        f"the device authorization request failed: {error}"
        + (f" ({description})" if description else "")
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
