"""Where tokens and pending logins live: the OS keyring, or an opt-in private file.

The keyring is the default. Its values are split into pieces small enough for every
platform (Windows Credential Manager takes about 1,280 characters per entry, keyring
25 stores UTF-16 and splits nothing: jaraco/keyring #355, #540), written only when they
change (macOS asks again on every rewrite), and every call has a timeout (a D-Bus
activation or a locked collection can hang). A keyring backend that stores plain text
(`keyrings.alt`) is refused: the plain-text file store is only ever an explicit choice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol, TypeVar

import filelock
import platformdirs

from ..config import APP_NAME, Settings
from ..errors import StorageError
from ..logs import MASK, redact, register_secret
from .file_store import FileStore, warn_unreadable

log = logging.getLogger(__name__)

SERVICE = APP_NAME
CHUNK_SIZE = 1000  # characters; below Windows' limit with room to spare
READ_ATTEMPTS = 4
MAX_PIECES = 100  # 100 KB; a manifest naming more is mangled (token sets: 2-8 KB)
SECRET_RUN = 12  # characters: a longer stretch of a stored value is masked in errors
_MANIFEST = "assetctl-chunks:"

T = TypeVar("T")

STORE_HINT = (
    "unlock or start your system keyring (on Linux a Secret Service such as "
    "gnome-keyring), or opt in to a private file with --token-store file "
    "(ASSETCTL_TOKEN_STORE=file); in CI use ASSETCTL_TOKEN or `assetctl login "
    "--client-credentials`"
)


class StoreTimeout(StorageError):
    """The store did not answer in time: not worth asking again at once."""


class SecretStore(Protocol):
    """A place for small secret strings, by key."""

    description: str

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> bool: ...


def open_store(settings: Settings) -> SecretStore:
    if settings.token_store == "file":  # noqa: S105 - a store name
        return FileStore(Path(platformdirs.user_state_dir(APP_NAME)) / "tokens")
    return KeyringStore(timeout=settings.keyring_timeout)


class KeyringStore:
    """The OS keyring, with pieces, change detection and timeouts."""

    def __init__(self, timeout: float = 10.0, backend: object | None = None) -> None:
        self.timeout = timeout
        self._backend = backend
        self.description = "system keyring"
        self._lock: filelock.BaseFileLock | None = None
        self._warned: set[str] = set()

    # One process at a time talks to the keyring: gnome-keyring (42 and 50) aborts when
    # many clients open Secret Service sessions at once, and comes back locked (seen
    # here with 16 processes, 2026-12; upstream gnome-keyring #190, #196, #199).

    def get(self, key: str) -> str | None:
        with self._serialised():
            return self._get_unlocked(key)

    def set(self, key: str, value: str) -> None:
        with self._serialised():
            self._set_unlocked(key, value)

    def delete(self, key: str) -> bool:
        with self._serialised():
            return self._delete_unlocked(key)

    def _serialised(self) -> AbstractContextManager[object]:
        if self._lock is None:
            folder = Path(platformdirs.user_state_dir(APP_NAME)) / "locks"
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError:
                log.debug("no lock folder %s; keyring calls not serialised", folder)
                return nullcontext()
            self._lock = filelock.FileLock(
                folder / "keyring.lock", timeout=self.timeout
            )
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise StoreTimeout(
                f"another assetctl process held the keyring for {self.timeout:.0f} s",
                hint=STORE_HINT,
            ) from None
        return _Release(self._lock)

    def _get_unlocked(self, key: str) -> str | None:
        # A writer in another process may swap the pieces while we read: read again.
        self.backend()  # no keyring at all is final: never worth a second read
        for attempt in range(READ_ATTEMPTS):
            try:
                head = self._read(key)
                if head is None or not head.startswith(_MANIFEST):
                    return head
                value = self._read_pieces(key, head)
            except StoreTimeout:
                raise
            except StorageError:
                # Secret Service: an item deleted between search and read says "Item
                # does not exist" (gnome-keyring 42, seen 2026-12): read again.
                if attempt == READ_ATTEMPTS - 1:
                    raise
                value = None
            if value is not None:
                return value
            time.sleep(0.05 * (attempt + 1))
        log.warning("the keyring entry %s is incomplete; ignoring it", key)
        return None

    def _set_unlocked(self, key: str, value: str) -> None:
        old_head = self._read(key)
        if old_head is not None and self._same(key, old_head, value):
            log.debug("keyring entry %s unchanged; not rewriting it", key)
            return

        pieces = _split(value)
        for piece in pieces:  # a backend's error may quote what it was given
            register_secret(piece)
        if len(pieces) == 1 and not value.startswith(_MANIFEST):
            self._write(key, value)
        else:
            # Pieces are named by the value's digest and written before the manifest
            # that names them, so a reader never finds a manifest without its pieces.
            digest = _digest(value)
            for i, piece in enumerate(pieces):
                self._write(_piece_name(key, digest, i), piece)
            self._write(key, f"{_MANIFEST}{len(pieces)}:{digest}")
        self._delete_pieces(key, old_head, keep=value)

    def _delete_unlocked(self, key: str) -> bool:
        raw = self._read_raw(key)
        if raw is None:
            return False
        self._delete_pieces(key, self._text(key, raw))
        self._call(lambda kr: _delete_quietly(kr, key), "delete")
        return True

    def _read(self, name: str, *, quiet: bool = False) -> str | None:
        """The entry's text; None if it is absent or not text (warned about once,
        unless `quiet`: a piece that is not text makes its value read as incomplete)."""
        return self._text(name, self._read_raw(name), quiet=quiet)

    def _read_raw(self, name: str) -> object:
        return self._call(lambda kr: kr.get_password(SERVICE, name), "read")

    def _text(self, name: str, raw: object, *, quiet: bool = False) -> str | None:
        # keyring promises str; some backends give bytes. UTF-8 bytes are read as
        # text; anything else must not fail every command: the next login replaces it.
        if raw is None or isinstance(raw, str):
            return raw
        if isinstance(raw, bytes):
            with contextlib.suppress(UnicodeDecodeError):
                return raw.decode("utf-8")
        if not quiet:
            warn_unreadable(self._warned, name, f"{type(raw).__name__}, not text")
        return None

    def _write(self, name: str, value: str) -> None:
        self._call(
            lambda kr: kr.set_password(SERVICE, name, value), "write", secret=value
        )

    def _read_pieces(self, key: str, head: str) -> str | None:
        count, digest = _parse_manifest(head)
        parts = [
            self._read(_piece_name(key, digest, i), quiet=True) for i in range(count)
        ]
        if any(part is None for part in parts):
            return None
        value = "".join(parts)  # type: ignore[arg-type]
        return value if _digest(value) == digest else None

    def _same(self, key: str, old_head: str, value: str) -> bool:
        if not old_head.startswith(_MANIFEST):
            return old_head == value
        return _parse_manifest(old_head)[1] == _digest(value) and self.get(key) == value

    def _delete_pieces(
        self, key: str, head: str | None, keep: str | None = None
    ) -> None:
        """Remove the pieces a manifest named, unless they hold the value `keep`."""
        if not head or not head.startswith(_MANIFEST):
            return
        count, digest = _parse_manifest(head)
        if keep is not None and digest == _digest(keep):
            return  # rewritten under the same names just now
        for i in range(count):
            self._delete(_piece_name(key, digest, i))

    def _delete(self, name: str) -> None:
        self._call(lambda kr: _delete_quietly(kr, name), "delete")

    def _call(
        self, action: Callable[[Any], T], what: str, secret: str | None = None
    ) -> T:
        return call_with_timeout(
            lambda: action(self.backend()),
            self.timeout,
            f"keyring {what}",
            secret=secret,
        )

    def backend(self) -> object:
        if self._backend is None:
            self._backend = call_with_timeout(
                _safe_backend, self.timeout, "keyring start"
            )
            name = getattr(self._backend, "name", type(self._backend).__name__)
            self.description = f"system keyring ({name})"
        return self._backend


class _Release:
    """Releases an already acquired lock on leaving the `with` block."""

    def __init__(self, lock: filelock.BaseFileLock) -> None:
        self.lock = lock

    def __enter__(self) -> object:
        return self.lock

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


def call_with_timeout(
    action: Callable[[], T], timeout: float, what: str, secret: str | None = None
) -> T:
    """Run `action` in a daemon thread; a hang becomes a `StorageError`, not a hang.
    No part of `secret` (the value being stored) reaches the error's message."""
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            results.put((True, action()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            results.put((False, exc))

    threading.Thread(target=run, name=what, daemon=True).start()
    try:
        ok, value = results.get(timeout=timeout)
    except queue.Empty:
        raise StoreTimeout(
            f"the {what} did not answer within {timeout:.0f} s", hint=STORE_HINT
        ) from None
    if ok:
        return value  # type: ignore[return-value]
    raise _storage_error(value, what, secret)  # type: ignore[arg-type]


def _safe_backend() -> object:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    chosen = _effective(backend)
    if isinstance(chosen, fail.Keyring):
        raise StorageError("no system keyring is available", hint=STORE_HINT)
    if _is_plaintext(chosen):
        raise StorageError(
            "the keyring backend "
            f"{type(chosen).__module__}.{type(chosen).__name__} stores "
            "secrets unencrypted; assetctl will not use it silently",
            hint="remove keyrings.alt or choose another backend, or opt in to the file "
            "store explicitly with --token-store file",
        )
    return backend


def _effective(backend: object) -> object:
    """The backend a chainer would write to first."""
    children = getattr(backend, "backends", None)
    if children:
        return children[0]
    return backend


def _is_plaintext(backend: object) -> bool:
    module = type(backend).__module__
    name = type(backend).__name__
    return (
        module.startswith("keyrings.alt")
        and "Encrypted" not in name
        or module.endswith(".null")
    )


def _storage_error(
    exc: BaseException, what: str, secret: str | None = None
) -> BaseException:
    if isinstance(exc, StorageError):
        return exc
    try:
        from keyring.errors import KeyringLocked, NoKeyringError
    except ImportError:  # pragma: no cover
        return exc
    if isinstance(exc, NoKeyringError):
        return StorageError("no system keyring is available", hint=STORE_HINT)
    if isinstance(exc, KeyringLocked):
        return StorageError("the system keyring is locked", hint=STORE_HINT)
    if isinstance(exc, Exception):
        # Backends also fail in their own ways: keyrings.cryptfile raises EOFError when
        # it cannot prompt (no terminal), D-Bus libraries raise their own errors.
        reason = _first_line(exc, secret)
        return StorageError(f"the {what} failed: {reason}", hint=STORE_HINT)
    return exc


def _delete_quietly(kr: object, key: str) -> None:
    from keyring.errors import PasswordDeleteError

    try:
        kr.delete_password(SERVICE, key)  # type: ignore[attr-defined]
    except PasswordDeleteError:
        pass


def _split(value: str) -> list[str]:
    if len(value) <= CHUNK_SIZE:
        return [value]
    return [value[i : i + CHUNK_SIZE] for i in range(0, len(value), CHUNK_SIZE)]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def _parse_manifest(head: str) -> tuple[int, str]:
    """(pieces, digest); a mangled manifest gives (0, ""), which reads as absent and
    is overwritten by the next login instead of failing every command."""
    count, _, digest = head[len(_MANIFEST) :].partition(":")
    try:
        pieces = int(count)
    except ValueError:
        return 0, ""
    return (pieces, digest) if 0 < pieces <= MAX_PIECES else (0, "")


def _first_line(exc: BaseException, secret: str | None = None) -> str:
    """The first line of a backend's error, with secrets masked: a backend may quote
    the value it was given (a piece of a token that no pattern would recognise)."""
    text = redact(_mask_runs(str(exc), secret) if secret else str(exc))
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def _mask_runs(text: str, secret: str, run: int = SECRET_RUN) -> str:
    """`text` with every stretch of `run` or more characters of `secret` masked, so
    neither the value nor a truncated or partial quote of it survives."""
    windows = {secret[i : i + run] for i in range(len(secret) - run + 1)}
    hidden = [False] * len(text)
    for i in range(len(text) - run + 1):
        if text[i : i + run] in windows:
            hidden[i : i + run] = [True] * run
    out: list[str] = []
    for i, char in enumerate(text):
        if not hidden[i]:
            out.append(char)
        elif i == 0 or not hidden[i - 1]:
            out.append(MASK)
    return "".join(out)


def _piece_name(key: str, digest: str, index: int) -> str:
    return f"{key}#{digest}#{index}"
