"""Logging set-up for every command, and the redaction that keeps secrets out of it.

Redaction is always on, whatever the level: a record is scrubbed of anything shaped like
a JWT, a bearer credential or a token-bearing field, and of every secret value the auth
layer registered at run time (opaque refresh tokens, client secrets, device codes).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "[redacted]"

SECRET_FIELDS = (
    "access_token",
    "refresh_token",
    "id_token",
    "device_code",
    "client_secret",
    "code_verifier",
    "password",
    "assertion",
    "subject_token",
)

_PATTERNS = [
    # JWTs (Keycloak's access, refresh and id tokens are all JWTs).
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),
    # Authorization header values.
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(?<=basic )[A-Za-z0-9._~+/=-]+"),
]
# A quoted value is masked up to its closing quote (a JSON password may hold spaces,
# commas or escaped quotes); an unquoted or unterminated one up to a delimiter.
_FIELD_PATTERN = re.compile(
    r"(?i)((?:" + "|".join(SECRET_FIELDS) + r")[\"']?\s*[:=]\s*)"
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[\"']?[^\"'&\s,}]+)"
)

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it shows up."""
    if value and len(value) >= 6:
        with _lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    """Return `text` with every secret we know of, or can recognise, masked."""
    with _lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return _FIELD_PATTERN.sub(_mask_field, text)


def scrub(text: str) -> str:
    """`redact`, then control characters shown as escapes: text a server chose (an
    error body, a user code) can neither break a one-line message nor drive the
    terminal (an OSC 52 sequence writes the clipboard)."""
    return _CONTROL.sub(_escape, redact(text))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group(0))[1:-1]


def _mask_field(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[0] in "\"'" else ""
    closed = quote if len(value) > 1 and value.endswith(quote) else ""
    return match.group(1) + quote + MASK + closed


class RedactingFilter(logging.Filter):
    """Formats each record once and stores the scrubbed text as its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format must not break the caller
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info)
            )
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure(verbosity: int) -> None:
    """0: warnings, 1 (`-v`): info, 2 (`--debug`): everything, to stderr."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("assetctl: %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    # urllib3 logs full URLs at DEBUG; our own HTTP dump replaces it.
    logging.getLogger("urllib3").setLevel(max(level, logging.INFO))
