"""Signing in and out: the steps of `login`, `logout` and `status`, without any output.

A device login can run in one go (`run_device_login`) or in two steps across processes
(`start_device_login`, then `resume_device_login`): the pending authorization is a
secret
kept in the token store, one per profile, and polls are paced by the server's interval
across processes by taking the profile's lock around each one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import (
    AccessDenied,
    AuthError,
    DeviceCodeExpired,
    NetworkError,
    NotFound,
    NotLoggedIn,
)
from ..logs import scrub
from . import device_flow, oidc
from .device_flow import DeviceAuthorization, Pending
from .manager import ENV_TOKEN, Authenticator
from .tokens import TokenSet, same_realm

log = logging.getLogger(__name__)


def login_scope(base: str, offline: bool) -> str:
    scopes = base.split()
    if offline and "offline_access" not in scopes:
        scopes.append("offline_access")
    return " ".join(scopes)


def check_store(authn: Authenticator) -> None:
    """Fail before showing any code if tokens could not be kept afterwards."""
    authn.credentials.store.get(f"{authn.settings.profile}/tokens")


def start_device_login(
    authn: Authenticator, *, offline: bool = False, use_pkce: bool = True
) -> DeviceAuthorization:
    check_store(authn)
    scope = login_scope(authn.settings.scope, offline)
    return device_flow.request_authorization(
        authn.session,
        authn.endpoints(),
        authn.settings.client_id,
        scope,
        use_pkce=use_pkce,
    )


def complete_login(authn: Authenticator, tokens: TokenSet) -> TokenSet:
    """Store a new login; the one it replaces is ended on its server, so a second
    login leaves no orphaned session behind (best effort: the new one counts)."""
    with authn.lock():
        previous = authn.credentials.load_tokens()
        authn.store_login(tokens)
    if previous is not None and _other_session(previous, tokens):
        how, ended = end_server_session(authn, previous)
        log.info("the previous login's server session: %s", how)
        if not ended:
            log.warning("the previous login's server session may live on: %s", how)
    return tokens


def _other_session(previous: TokenSet, new: TokenSet) -> bool:
    """Whether `previous` is provably a server session other than `new`'s. A person
    who approves twice in one browser gets both logins in one Keycloak session
    (its SSO cookie): ending the old one would end the new one with it. Without
    session ids to compare (opaque tokens), nothing is ended."""
    old_sid, new_sid = previous.claims().get("sid"), new.claims().get("sid")
    return bool(old_sid and new_sid and old_sid != new_sid)


def run_device_login(
    authn: Authenticator,
    authorization: DeviceAuthorization,
    on_wait: Callable[[DeviceAuthorization], None] | None = None,
) -> TokenSet:
    """Poll in this process until the person approves; store the tokens."""
    outcome = device_flow.wait_for_tokens(
        authn.session, authn.endpoints(), authorization, on_wait=on_wait
    )
    assert isinstance(outcome, TokenSet)  # no deadline: only tokens or an exception
    return complete_login(authn, outcome)


def save_pending(authn: Authenticator, authorization: DeviceAuthorization) -> None:
    """Keep a pending login for `--resume`; a new one replaces the old. Under the
    profile's lock, so a poll of the old one in flight cannot write it back."""
    with authn.lock():
        authn.credentials.save_pending(authorization)


def load_pending(authn: Authenticator) -> DeviceAuthorization:
    pending = authn.credentials.load_pending()
    if pending is None:
        raise NotFound(
            f"no pending login for profile '{authn.settings.profile}'",
            hint="start one with `assetctl login --no-wait`",
        )
    if pending.client_id != authn.settings.client_id or not same_realm(
        authn.settings.issuer, pending.issuer, pending.realm_url
    ):
        raise NotFound(
            f"the pending login of profile '{authn.settings.profile}' is for "
            f"{pending.issuer} "
            f"(client {pending.client_id})",
            hint="resume it with the same settings, or start a new one with "
            "`assetctl login --no-wait`",
        )
    return pending


def resume_device_login(
    authn: Authenticator,
    *,
    once: bool = False,
    timeout: float | None = None,
    on_wait: Callable[[DeviceAuthorization], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenSet | Pending:
    """Go on with the stored pending login: one poll (`once`), or until done."""
    deadline = None if timeout is None else time.time() + timeout
    while True:
        outcome = _poll_pending(authn, on_wait=on_wait, sleep=sleep, deadline=deadline)
        if isinstance(outcome, TokenSet) or once:
            return outcome
        if deadline is not None and outcome.authorization.next_poll_at > deadline:
            return outcome


def _poll_pending(
    authn: Authenticator,
    *,
    on_wait: Callable[[DeviceAuthorization], None] | None,
    sleep: Callable[[float], None],
    deadline: float | None,
) -> TokenSet | Pending:
    """One poll once the server's interval has passed. The wait happens outside the
    profile's lock, so other commands of the profile never queue behind it."""
    while True:
        with authn.lock():
            # Read under the lock: another process may just have polled, moving the
            # clock, or replaced the pending login with a new one.
            pending = load_pending(authn)
            delay = pending.next_poll_at - time.time()
            if delay <= 0:
                return _poll_now(authn, pending)
        if deadline is not None and time.time() + delay > deadline:
            return Pending(pending)
        if on_wait:
            on_wait(pending)
        sleep(delay)


def _poll_now(authn: Authenticator, pending: DeviceAuthorization) -> TokenSet | Pending:
    """Poll and record the outcome; the caller holds the profile's lock."""
    try:
        outcome = device_flow.poll_once(authn.session, authn.endpoints(), pending)
    except (AccessDenied, DeviceCodeExpired):
        authn.credentials.delete_pending()
        raise
    if isinstance(outcome, TokenSet):
        complete_login(authn, outcome)
        authn.credentials.delete_pending()
        return outcome
    authn.credentials.save_pending(outcome.authorization)
    return outcome


def login_with_client_credentials(authn: Authenticator, secret: str) -> TokenSet:
    tokens = oidc.client_credentials(
        authn.session,
        authn.endpoints(),
        authn.settings.client_id,
        secret,
        authn.settings.scope,
    )
    tokens = replace(tokens, grant="client_credentials")
    return complete_login(authn, tokens)


@dataclass(frozen=True)
class LogoutResult:
    removed: bool
    server: str  # how the server session ended, or why it was not
    server_ok: bool
    removed_pending: bool = False


def logout(authn: Authenticator) -> LogoutResult:
    """End the session on the server when possible; always remove local tokens."""
    # Under the profile's lock: a refresh finishing meanwhile would store its new
    # tokens after we removed the old ones, and the login would come back.
    with authn.lock():
        tokens = authn.credentials.load_tokens()
        server, server_ok = end_server_session(authn, tokens)
        removed = authn.credentials.delete_tokens()
        removed_pending = authn.credentials.delete_pending()
    return LogoutResult(
        removed=removed,
        server=server,
        server_ok=server_ok,
        removed_pending=removed_pending,
    )


def end_server_session(
    authn: Authenticator, tokens: TokenSet | None
) -> tuple[str, bool]:
    """End `tokens`' session at the server that issued them; (how, whether it did)."""
    if tokens is None:
        return "nothing stored", True
    if not tokens.refresh_token:
        return "no server session (service account token)", True
    try:
        endpoints = authn.endpoints_for(tokens)
        return oidc.end_session(authn.session, endpoints, tokens), True
    except NetworkError as exc:
        return scrub(f"server not reached ({exc.message})"), False
    except Exception as exc:  # noqa: BLE001 - local removal must happen regardless
        return scrub(f"server refused ({exc})"), False


def status(authn: Authenticator) -> dict[str, Any]:
    """Everything `assetctl status` shows; `NotLoggedIn` when there is no login."""
    settings = authn.settings
    env_tokens = authn.env_token()
    tokens = env_tokens if env_tokens is not None else _current_tokens(authn)
    claims = tokens.claims()
    if env_tokens is not None:
        # It cannot be refreshed: an unreadable or expired one is as good as none.
        authn.valid_tokens()
        if not claims:
            raise AuthError(
                f"{ENV_TOKEN} holds no readable JWT",
                hint=f"supply an access token, or unset {ENV_TOKEN}",
            )
    now = time.time()
    realm_roles = (claims.get("realm_access") or {}).get("roles", [])
    return {
        "profile": settings.profile,
        "issuer": tokens.issuer or settings.issuer,
        "client_id": tokens.client_id or claims.get("azp", ""),
        "user": claims.get("preferred_username") or claims.get("sub", ""),
        "email": claims.get("email"),
        "roles": sorted(realm_roles),
        "scopes": sorted((tokens.scope or claims.get("scope", "")).split()),
        "grant": tokens.grant,
        "access_expires_in": None
        if tokens.expires_at == float("inf")
        else round(tokens.expires_at - now),
        "refresh_expires_in": None
        if tokens.refresh_expires_at is None
        else round(tokens.refresh_expires_at - now),
        "has_refresh_token": tokens.refresh_token is not None,
        "offline": "offline_access" in (tokens.scope or "").split(),
        "token_source": authn.source(),
        "storage": authn.credentials.description
        if env_tokens is None
        else "not stored",
    }


def _current_tokens(authn: Authenticator) -> TokenSet:
    """The stored set, refreshed if its access token ran out: a session the server
    ended shows as ended, not as a login with an expired token. Offline, the stored
    set is shown as it is."""
    stored = authn.stored_tokens()
    if stored.is_fresh():
        return stored
    try:
        return authn.valid_tokens()
    except NetworkError as exc:
        log.warning("cannot check the session with the server (%s)", exc.message)
        return stored


def who(tokens: TokenSet) -> str:
    claims = tokens.claims()
    name = (
        claims.get("preferred_username")
        or claims.get("client_id")
        or claims.get("sub")
        or "unknown"
    )
    if claims.get("email"):
        return f"{name} <{claims['email']}>"
    return str(name)


__all__ = ["NotLoggedIn", "Pending"]
