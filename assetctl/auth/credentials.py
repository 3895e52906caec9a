"""What assetctl keeps per profile: its token set and at most one pending device login.

Each profile has its own entries, so tokens of one server are never handed to another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import StorageError
from .device_flow import DeviceAuthorization
from .store import SecretStore
from .tokens import TokenSet

log = logging.getLogger(__name__)

T = TypeVar("T")


class Credentials:
    def __init__(self, store: SecretStore, profile: str) -> None:
        self.store = store
        self.profile = profile
        self._warned: set[str] = set()

    @property
    def description(self) -> str:
        return self.store.description

    def load_tokens(self) -> TokenSet | None:
        return self._load(self._key("tokens"), TokenSet.from_json)

    def save_tokens(self, tokens: TokenSet) -> None:
        try:
            self.store.set(self._key("tokens"), tokens.to_json())
        except StorageError as exc:
            # Whatever they were obtained with is spent by now: a rotated refresh
            # token (Keycloak refuses its reuse) or an approved device code.
            fix = (
                f"fix the token store ({exc.hint})"
                if exc.hint
                else "fix the token store"
            )
            raise StorageError(
                f"could not save the new tokens: {exc.message}",
                hint=f"the login is lost (the refresh token or device code they came "
                f"from is spent); {fix}, then run `assetctl login`",
            ) from exc

    def delete_tokens(self) -> bool:
        return self.store.delete(self._key("tokens"))

    def load_pending(self) -> DeviceAuthorization | None:
        return self._load(self._key("pending"), DeviceAuthorization.from_json)

    def save_pending(self, authorization: DeviceAuthorization) -> None:
        self.store.set(self._key("pending"), authorization.to_json())

    def delete_pending(self) -> bool:
        return self.store.delete(self._key("pending"))

    def _key(self, kind: str) -> str:
        return f"{self.profile}/{kind}"

    def _load(self, key: str, parse: Callable[[str], T]) -> T | None:
        text = self.store.get(key)
        if text is None:
            return None
        try:
            return parse(text)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # Unreadable (an older format, a hand edit): treat as absent, say so once;
            # the next login overwrites it.
            if key not in self._warned:
                self._warned.add(key)
                log.warning("ignoring an unreadable stored entry %s", key)
            log.debug("entry %s: %s", key, exc)
            return None


def describe_lifetime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 0:
        return "expired"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
