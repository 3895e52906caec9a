"""The auth layer: sign-in (device flow, client credentials), token storage, refresh,
and the session every API call goes through."""

from __future__ import annotations

import requests

from ..config import Settings
from ..http import check_transport
from .hook import BearerAuth
from .manager import Authenticator


def authorized_session(
    settings: Settings, authenticator: Authenticator | None = None, pool_size: int = 10
) -> requests.Session:
    """A pooled session whose requests to the API carry a valid bearer token."""
    from ..http import make_session

    api_url = settings.require_api_url()
    check_transport(api_url, settings, "API")
    authenticator = authenticator or Authenticator(settings)
    session = make_session(settings, pool_size=pool_size)
    session.auth = BearerAuth(authenticator, api_url)
    return session


__all__ = ["Authenticator", "BearerAuth", "authorized_session"]
