"""The opt-in token store: one private file per entry, for machines without a keyring.

Never chosen silently (`--token-store file`); `status` reports it as unencrypted.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from ..errors import StorageError

log = logging.getLogger(__name__)


class FileStore:
    """Opt-in: one file per entry, for the owner only (0600 in a 0700 folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"file {folder} (opt-in, unencrypted)"
        self._warned: set[str] = set()

    def get(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            # A hand edit or a truncated write: absent, so the next login replaces it.
            warn_unreadable(self._warned, key, "not UTF-8 text")
            return None
        except OSError as exc:
            raise StorageError(
                f"cannot read {self._path(key)}: {exc.strerror}"
            ) from exc

    def set(self, key: str, value: str) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.folder, 0o700)
            if path.exists() and path.read_bytes() == value.encode("utf-8"):
                return
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(value)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            # A left-over temporary copy would outlive `logout`.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(
                f"cannot write {path}: {exc.strerror}",
                hint="check the folder's permissions",
            ) from exc

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def _path(self, key: str) -> Path:
        return self.folder / (key.replace("/", "__") + ".json")


def warn_unreadable(warned: set[str], key: str, why: str) -> None:
    if key not in warned:
        warned.add(key)
        log.warning("ignoring an unreadable stored entry %s (%s)", key, why)
