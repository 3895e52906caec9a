"""The requests auth hook: attaches the bearer token, and on a 401 refreshes once and
retries once. Tokens go only to the profile's API origin, never to another host."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests

from ..http import log_exchange
from .manager import Authenticator

log = logging.getLogger(__name__)


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, authenticator: Authenticator, api_url: str) -> None:
        self.authenticator = authenticator
        self.origin = _origin(api_url)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _origin(request.url or "") != self.origin:
            # A redirect or a next-page link to another host: send it no token.
            log.warning(
                "not sending the token to %s (not the API's origin)",
                _origin(request.url or ""),
            )
            request.headers.pop("Authorization", None)
            return request
        request.headers["Authorization"] = f"Bearer {self.authenticator.access_token()}"
        request.register_hook("response", self._retry_once_on_401)
        return request

    def _retry_once_on_401(
        self, response: requests.Response, **kwargs: Any
    ) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, "_assetctl_retried", False):
            return response
        sent = str(request.headers.get("Authorization") or "").removeprefix("Bearer ")
        token = self.authenticator.refresh_after_rejection(sent)
        if token is None:
            return response

        log_exchange(response)
        response.content  # noqa: B018 - drain so the connection can be reused
        response.close()
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry._assetctl_retried = True  # type: ignore[attr-defined]
        kwargs.pop("stream", None)
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        # The session's hooks run after this one, on the answer it returns: the --debug
        # dump would see the retry only, so the refused exchange is logged here.
        return again


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)
