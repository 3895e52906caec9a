"""Turning an HTTP error answer into one readable line and the matching exception.

RFC 9457 problem details, plain JSON error bodies and text are all reduced to
`HTTP 412 Precondition Failed: title: detail`; nothing here sends requests.
"""

from __future__ import annotations

import os
from http import HTTPStatus

import requests

from assetctl.errors import ApiError, AuthError, Conflict, Forbidden, NotFound

_TEXT_LIMIT = 200
_MESSAGE_KEYS = ("title", "detail", "message", "error_description", "error")


def describe(response: requests.Response) -> str:
    """`HTTP <status> <reason>: <what the body says>`, on one line."""
    status = response.status_code
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = response.reason or ""
    said = _body_message(response)
    head = f"HTTP {status} {reason}".rstrip()
    return f"{head}: {said}" if said else head


def error_for(response: requests.Response, what: str) -> ApiError | AuthError:
    """The exception for a failed answer; `what` names the request (`PUT /x/1`)."""
    message = f"{what}: {describe(response)}"
    status = response.status_code
    if status == 401:
        if os.environ.get("ASSETCTL_TOKEN", "").strip():
            # Logging in again cannot help: the variable wins over a stored login.
            hint = "ASSETCTL_TOKEN was refused; supply a valid token or unset it"
        else:
            hint = "run `assetctl login` (or check the token's audience)"
        return AuthError(message, hint=hint)
    if status == 403:
        return Forbidden(message, status=status, hint="ask for the writer role")
    if status == 404:
        return NotFound(message, status=status)
    if status in (409, 412):
        hint = "the asset changed meanwhile; fetch it again and redo the edit"
        return Conflict(message, status=status, hint=hint if status == 412 else None)
    return ApiError(message, status=status)


def not_json(response: requests.Response, what: str, expected: str) -> ApiError:
    """The error for a success answer whose body is not the JSON a caller needs."""
    content_type = response.headers.get("Content-Type") or "none"
    return ApiError(
        f"{what}: HTTP {response.status_code} answer is not {expected} "
        f"(Content-Type: {content_type})",
        status=response.status_code,
        hint="check the API URL: a login page, proxy or broken server may be answering",
    )


def _body_message(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            return _json_message(response.json())
        except (ValueError, RecursionError):
            pass
    text = " ".join(response.text.split())
    return text[:_TEXT_LIMIT] + ("..." if len(text) > _TEXT_LIMIT else "")


def _json_message(body: object) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body[key]) for key in _MESSAGE_KEYS if isinstance(body.get(key), str)]
    if isinstance(body.get("error"), dict):  # {"error": {"code": ..., "message": ...}}
        parts.append(_json_message(body["error"]))
    unique = list(dict.fromkeys(p for p in parts if p))
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        unique.append(f"{len(errors)} error(s): {_first_error(errors[0])}")
    return ": ".join(unique)


def _first_error(error: object) -> str:
    if isinstance(error, dict):
        where = error.get("pointer") or error.get("field") or ""
        text = error.get("detail") or error.get("message") or ""
        return f"{where} {text}".strip()
    return str(error)
