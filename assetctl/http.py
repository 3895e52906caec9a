"""The one way assetctl talks HTTP: a pooled session with timeouts, TLS and logging.

It knows nothing of tokens; `assetctl.auth` attaches them. Every request gets a timeout,
proxies come from the environment (requests' default), TLS uses the `--ca-bundle` file
or else the operating system's trust store, and `--debug` logs each exchange redacted.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .config import Settings
from .errors import ApiError, ConfigError, NetworkError
from .logs import redact

log = logging.getLogger(__name__)

USER_AGENT = f"assetctl/{__version__}"
BODY_LOG_LIMIT = 2000


class TimeoutSession(requests.Session):
    """A session whose requests all carry a timeout unless the caller sets one."""

    def __init__(self, timeout: float, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.ca_bundle = ca_bundle

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        if self.ca_bundle:
            # Per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win over a
            # session's `verify` (psf/requests #4726, still so in 2026-12), and
            # --ca-bundle must win.
            kwargs.setdefault("verify", self.ca_bundle)
        return super().request(method, url, *args, **kwargs)


class _TrustStoreAdapter(HTTPAdapter):
    """Verifies TLS against the OS trust store (corporate CAs installed system-wide)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        import ssl

        import truststore

        kwargs["ssl_context"] = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        super().init_poolmanager(*args, **kwargs)


def make_session(settings: Settings, pool_size: int = 10) -> TimeoutSession:
    """A fresh session configured from `settings`; share it, it is thread-safe enough
    for concurrent requests through its pooled adapters."""
    session = TimeoutSession(settings.timeout, settings.ca_bundle)
    session.headers["User-Agent"] = USER_AGENT

    if settings.ca_bundle:
        session.verify = settings.ca_bundle
        https: HTTPAdapter = HTTPAdapter(
            pool_connections=pool_size, pool_maxsize=pool_size
        )
    else:
        https = _TrustStoreAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("https://", https)
    session.mount(
        "http://", HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    )

    session.hooks["response"].append(log_exchange)
    return session


def check_transport(url: str, settings: Settings, what: str) -> None:
    """Refuse plain http:// except on loopback, unless the user allowed it."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme != "http":
        raise ConfigError(f"{what} URL '{url}' must start with https://")
    if is_loopback(parts.hostname or "") or settings.allow_http:
        return
    raise ConfigError(
        f"refusing plain http:// for the {what} at {parts.hostname}: "
        "tokens would travel "
        "unencrypted",
        hint="use https://, or pass --allow-http (ASSETCTL_ALLOW_HTTP=1) if you must",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def send(
    session: requests.Session, method: str, url: str, **kwargs: Any
) -> requests.Response:
    """One request; transport failures become a `NetworkError` naming the host."""
    try:
        return session.request(method, url, **kwargs)
    except requests.exceptions.SSLError as exc:
        if "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc):
            raise NetworkError(
                f"{urlsplit(url).netloc} does not speak TLS",
                hint="check the URL: the server may want http://, not https://",
            ) from exc
        raise NetworkError(
            f"TLS verification failed for {urlsplit(url).netloc}",
            hint="pass --ca-bundle FILE if the server uses a private CA",
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise NetworkError(
            f"{urlsplit(url).netloc} did not answer in time",
            hint="check the server, or raise --timeout",
        ) from exc
    except requests.exceptions.TooManyRedirects as exc:
        raise ApiError(
            f"{urlsplit(url).netloc} redirects in a loop",
            hint="check the URL and the server's redirects",
        ) from exc
    except requests.exceptions.ConnectionError as exc:
        raise NetworkError(
            f"cannot reach {urlsplit(url).netloc}",
            hint="check the URL and that the server is running",
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise NetworkError(
            f"the request to {urlsplit(url).netloc} failed: {exc}"
        ) from exc


def log_exchange(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    request = response.request
    elapsed = response.elapsed.total_seconds() * 1000 if response.elapsed else 0.0
    log.debug(
        "%s %s -> %s (%.0f ms)",
        request.method,
        _safe_url(request.url),
        response.status_code,
        elapsed,
    )
    log.debug("request headers: %s", _headers(request.headers))
    if request.body:
        body = (
            request.body.decode("utf-8", "replace")
            if isinstance(request.body, bytes)
            else str(request.body)
        )
        log.debug("request body: %s", _clip(body))
    log.debug("response headers: %s", _headers(response.headers))
    if not response.headers.get("Content-Type", "").startswith(
        ("application/json", "application/problem+json", "text/")
    ):
        return
    log.debug("response body: %s", _clip(response.text))


def _headers(headers: Any) -> str:
    shown = {}
    for name, value in headers.items():
        if name.lower() in {
            "authorization",
            "cookie",
            "set-cookie",
            "proxy-authorization",
        }:
            value = "[redacted]"
        shown[name] = value
    return redact(str(shown))


def _safe_url(url: str | None) -> str:
    return redact(url or "")


def _clip(text: str) -> str:
    text = redact(text)
    if len(text) > BODY_LOG_LIMIT:
        return text[:BODY_LOG_LIMIT] + f"... ({len(text)} chars)"
    return text
