"""What the root command hands to every subcommand: settings, made once, and the auth
layer and API session, made only by the commands that need them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from ..config import Settings


@dataclass
class AppContext:
    flags: dict[str, Any]
    verbosity: int = 0
    output: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _authenticator: Any = field(default=None, repr=False)
    _session: requests.Session | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ..config import load_settings

            self._settings = load_settings(self.flags)
        return self._settings

    @property
    def authenticator(self):  # type: ignore[no-untyped-def]
        if self._authenticator is None:
            from ..auth import Authenticator

            self._authenticator = Authenticator(self.settings)
        return self._authenticator

    def session(self, pool_size: int = 10) -> requests.Session:
        """The authorized API session (one per command; pooled)."""
        if self._session is None:
            from ..auth import authorized_session

            self._session = authorized_session(
                self.settings, self.authenticator, pool_size=pool_size
            )
        return self._session
