"""WSGI middleware: route on the path as sent, and one access-log line a request.

Waitress and Werkzeug both percent-decode PATH_INFO, so `/datasets/a%2F..%2Fb`
would reach the router as `/datasets/a/../b` and match nothing (or worse, the
wrong thing). The raw request target is still in REQUEST_URI (waitress) or
RAW_URI (Werkzeug), so routing uses that and views decode each id themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

access_log = logging.getLogger("asset_api.access")

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


def raw_path(environ: Environ) -> str | None:
    """The request path still percent-encoded, or None if the server keeps no copy."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        return None
    if not target.startswith("/"):  # absolute-form: http://host/path
        target = urlsplit(target).path or "/"
    path = target.partition("?")[0].partition("#")[0]

    script_name = environ.get("SCRIPT_NAME", "")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    return path


class RawPathRouting:
    """Puts the raw path into PATH_INFO before the app routes on it."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Any:
        path = raw_path(environ)
        if path is not None:
            environ["PATH_INFO"] = path
        return self.app(environ, start_response)


class AccessLog:
    """Logs method, path, status and duration; never headers or the query."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        status = ["-"]

        def recording_start_response(line: str, *args: Any) -> Any:
            status[0] = line.partition(" ")[0]
            return start_response(line, *args)

        try:
            return self.app(environ, recording_start_response)
        finally:
            path = raw_path(environ) or environ.get("PATH_INFO", "")
            elapsed_ms = (time.perf_counter() - started) * 1000
            method = environ.get("REQUEST_METHOD")
            access_log.info("%s %s %s %.1fms", method, path, status[0], elapsed_ms)
