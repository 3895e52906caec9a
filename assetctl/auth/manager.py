"""The auth layer every command goes through: a valid access token, on demand.

It prefers `ASSETCTL_TOKEN` when set, else the profile's stored token set, refreshing it
ahead of expiry. Refreshing is serialised across processes with a per-profile file lock,
and the store is read again once the lock is held: with refresh-token rotation, two
processes spending the same refresh token would end the session (Keycloak reports a
replayed refresh token as `invalid_grant` and, with rotation on, ends the session).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import filelock
import platformdirs
import requests

from ..config import APP_NAME, Settings
from ..errors import (
    AuthError,
    ConfigError,
    NetworkError,
    NotLoggedIn,
    SessionEnded,
    StorageError,
)
from ..http import check_transport, make_session
from ..logs import register_secret
from . import oidc
from .credentials import Credentials
from .oidc import Endpoints
from .store import open_store
from .tokens import TokenSet

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0
# RFC 6750's b64token: what a Bearer credential may hold.
ACCESS_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
ENV_TOKEN = "ASSETCTL_TOKEN"  # noqa: S105 - a variable name
ENV_SECRET = "ASSETCTL_CLIENT_SECRET"  # noqa: S105 - a variable name
ENV_SECRET_FILE = "ASSETCTL_CLIENT_SECRET_FILE"  # noqa: S105 - a variable name


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        credentials: Credentials | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self._session = session
        self._credentials = credentials
        self._endpoints: Endpoints | None = None
        self._cached: TokenSet | None = None
        self._env_tokens: TokenSet | None = None
        self._thread_lock = threading.RLock()
        self._file_lock: filelock.BaseFileLock | None = None

    # -- the pieces, made only when first needed (commands without tokens touch none)

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = make_session(self.settings)
        return self._session

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = Credentials(
                open_store(self.settings), self.settings.profile
            )
        return self._credentials

    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = self._discover(self.settings.issuer)
        return self._endpoints

    def endpoints_for(self, tokens: TokenSet) -> Endpoints:
        """The endpoints of the realm that issued `tokens`, which may not be the one
        configured now (`--server-url` changed since the login): their refresh token
        goes back only to its own server."""
        if tokens.made_at(self.settings.issuer, tokens.client_id):
            return self.endpoints()
        return self._discover(tokens.realm_url or tokens.issuer)

    def _discover(self, realm_url: str) -> Endpoints:
        check_transport(realm_url, self.settings, "Keycloak server")
        endpoints = oidc.discover(self.session, realm_url)
        # Secrets go to these URLs: a discovery document may not send them elsewhere
        # over plain http.
        for url in (
            endpoints.token,
            endpoints.device_authorization,
            endpoints.revocation,
            endpoints.end_session,
            endpoints.jwks_uri,
        ):
            if url:
                check_transport(url, self.settings, "Keycloak endpoint")
        return endpoints

    # -- tokens

    def env_token(self) -> TokenSet | None:
        """A ready access token from ASSETCTL_TOKEN; it wins over stored tokens."""
        raw = self.env.get(ENV_TOKEN, "").strip()
        if not raw:
            return None
        if self._env_tokens is not None and self._env_tokens.access_token == raw:
            return self._env_tokens  # decoded once: batches ask for it per request
        for piece in raw.split():
            register_secret(piece)  # a token folded over lines is still a secret
        if not ACCESS_TOKEN_CHARS.fullmatch(raw):
            raise AuthError(
                f"{ENV_TOKEN} holds characters no access token has (spaces, line "
                "breaks or others)",
                hint=f'set it on one line, e.g. {ENV_TOKEN}="$(assetctl token)"',
            )
        claims = TokenSet(access_token=raw, expires_at=0).claims()
        exp = claims.get("exp", 0)
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise AuthError(
                f"the token in {ENV_TOKEN} has an 'exp' claim that is no number",
                hint="supply a well-formed access token",
            )
        expires_at = float(exp) or float("inf")
        self._env_tokens = TokenSet(
            access_token=raw,
            expires_at=expires_at,
            lifetime=float("inf"),
            issuer=str(claims.get("iss", "")),
            grant="environment",
        )
        return self._env_tokens

    def source(self) -> str:
        if self.env.get(ENV_TOKEN, "").strip():
            return f"environment variable {ENV_TOKEN}"
        return self.credentials.description

    def stored_tokens(self) -> TokenSet:
        """The profile's stored set, as is; `NotLoggedIn` if there is none for here."""
        issuer = self.settings.issuer  # a missing setting is the first thing to say
        tokens = self.credentials.load_tokens()
        if tokens is None:
            raise NotLoggedIn(
                f"not logged in (profile '{self.settings.profile}')",
                hint="run `assetctl login`",
            )
        if not tokens.made_at(issuer, self.settings.client_id):
            raise NotLoggedIn(
                f"the stored login of profile '{self.settings.profile}' is for "
                f"{tokens.issuer} (client {tokens.client_id}), not {issuer} "
                f"(client {self.settings.client_id})",
                hint="run `assetctl login`, or choose the matching --profile",
            )
        return tokens

    def valid_tokens(self, min_valid: float = 0.0) -> TokenSet:
        """Tokens valid for at least `min_valid` seconds, refreshed if need be."""
        env_tokens = self.env_token()
        if env_tokens is not None:
            return self._check_env_token(env_tokens, min_valid)

        with self._thread_lock:
            cached = self._cached
            if cached is not None and cached.is_fresh(min_valid):
                return cached
            tokens = self.stored_tokens()
            if not tokens.is_fresh(min_valid):
                log.info(
                    "access token expires in %.0f s; refreshing", tokens.seconds_left()
                )
                tokens = self._refresh_or_keep(tokens, min_valid)
            self._cached = tokens
            return tokens

    def _refresh_or_keep(self, tokens: TokenSet, min_valid: float) -> TokenSet:
        """Refresh; if Keycloak cannot be reached, a token still valid for what was
        asked is good enough (the margin is there to avoid failures, not cause them)."""
        try:
            return self._refresh_locked(min_valid, rejected=None)
        except NetworkError as exc:
            if tokens.seconds_left() > max(min_valid, 1.0):
                log.warning(
                    "cannot refresh (%s); using the current token, valid %.0f s more",
                    exc.message,
                    tokens.seconds_left(),
                )
                return tokens
            raise

    def access_token(self, min_valid: float = 0.0) -> str:
        return self.valid_tokens(min_valid).access_token

    def refresh_after_rejection(self, rejected: str) -> str | None:
        """The API said 401 to `rejected`: a new token, or None if none can be had."""
        if self.env_token() is not None:
            return None
        with self._thread_lock:
            if self._cached is not None and self._cached.access_token != rejected:
                return self._cached.access_token
            log.info("the API rejected the access token; refreshing once")
            self._cached = self._refresh_locked(0.0, rejected=rejected)
            return self._cached.access_token

    def store_login(self, tokens: TokenSet) -> None:
        self.credentials.save_tokens(tokens)
        self._cached = tokens

    # -- internals

    def _refresh_locked(self, min_valid: float, rejected: str | None) -> TokenSet:
        with self.lock():
            # Another process may have refreshed while we waited: use its result.
            tokens = self.stored_tokens()
            stale = rejected is not None and tokens.access_token == rejected
            if not stale and tokens.is_fresh(min_valid):
                log.debug("another process refreshed the tokens meanwhile")
                return tokens
            fresh = self._renew(tokens)
            # Rotation: the old refresh token is spent now; keep the new one first.
            self.credentials.save_tokens(fresh)

        if not fresh.is_fresh(min_valid):
            raise AuthError(
                "the server issues access tokens valid for "
                f"{fresh.lifetime:.0f} s, less "
                f"than the {min_valid:.0f} s asked for",
                hint="ask for less with --min-valid",
            )
        return fresh

    def _renew(self, tokens: TokenSet) -> TokenSet:
        if tokens.grant == "client_credentials":
            secret = read_client_secret(self.env)
            if secret is None:
                raise SessionEnded(
                    "the service account token needs renewing and no client secret "
                    "is set",
                    hint=f"set {ENV_SECRET} or {ENV_SECRET_FILE}, then run "
                    "`assetctl login --client-credentials`",
                )
            return oidc.client_credentials(
                self.session,
                self.endpoints(),
                tokens.client_id,
                secret,
                tokens.scope or self.settings.scope,
            ).with_updates(grant="client_credentials")
        if tokens.refresh_expired():
            raise SessionEnded(
                "your session ended (the refresh token expired)",
                hint="run `assetctl login`",
            )
        return oidc.refresh(self.session, self.endpoints(), tokens)

    def _check_env_token(self, tokens: TokenSet, min_valid: float) -> TokenSet:
        if tokens.seconds_left() <= max(min_valid, 0.0):
            raise AuthError(
                f"the token in {ENV_TOKEN} is expired or expires within "
                f"{min_valid:.0f} s",
                hint=f"supply a fresh one, or unset {ENV_TOKEN} to use the stored "
                "login",
            )
        return tokens

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The profile's cross-process lock around whatever changes its stored
        entries. Re-entrant within this object: one lock file, one counter."""
        if self._file_lock is None:
            self._file_lock = filelock.FileLock(
                self._lock_folder() / f"{self.settings.profile}.lock",
                timeout=LOCK_TIMEOUT,
            )
        try:
            self._file_lock.acquire()
        except filelock.Timeout as exc:
            raise AuthError(
                "another assetctl process has held the lock of profile "
                f"'{self.settings.profile}' for {LOCK_TIMEOUT:.0f} s",
                hint="wait for it to finish, then try again",
            ) from exc
        try:
            yield
        finally:
            self._file_lock.release()

    def _lock_folder(self) -> Path:
        folder = Path(platformdirs.user_state_dir(APP_NAME)) / "locks"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageError(
                f"cannot create the lock folder {folder}: {exc.strerror}",
                hint="check XDG_STATE_HOME and the folder's permissions",
            ) from exc
        return folder


def read_client_secret(env: Mapping[str, str], path: str | None = None) -> str | None:
    """The service account secret, from a file or ASSETCTL_CLIENT_SECRET(_FILE); never a
    flag value, which would land in shell history."""
    path = path or env.get(ENV_SECRET_FILE)
    if path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the client secret file {path}: {exc.strerror}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"the client secret file {path} is not UTF-8 text",
                hint="write the secret alone into the file",
            ) from exc
        return secret or None
    return env.get(ENV_SECRET, "").strip() or None
