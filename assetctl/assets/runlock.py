"""One run of a batch at a time: a lock file that exists only while a run holds it.

The lock is the kernel's `flock` on the file, so a run that dies releases it at once;
the file is removed when the run ends. Journals (`journal.py`) hold one of these; this
module knows nothing of what they record.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: filelock's own lock, which removes its file itself
    fcntl = None  # type: ignore[assignment]

import filelock

# A finishing run removes the file between another run's open() and flock(): that
# other run then holds a lock on a file no one can see, so it tries the new one.
_ATTEMPTS = 3


class RunLock:
    """`acquire()` is True when this process may run; `release()` removes the file.

    Removing a lock file is only safe with both halves of one protocol, kept here: the
    holder unlinks the file *before* it unlocks, and a new holder checks after `flock`
    that the path still names the file it locked. A lock on a file already unlinked
    then never counts, so two runs never both believe they hold it (filelock keeps
    its Unix files for exactly that reason: tox-dev/filelock#574, 2026-07).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback = None if fcntl else filelock.FileLock(str(path), timeout=0)

    def acquire(self) -> bool:
        if self._fallback is not None:
            try:
                self._fallback.acquire()
            except filelock.Timeout:
                return False
            return True
        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False  # a live run holds it
            if self._names(fd):
                self._fd = fd
                return True
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fallback is not None:
            self._fallback.release()
            return
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: see the class docstring
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None

    def _names(self, fd: int) -> bool:
        try:
            on_path = os.stat(self.path)
        except FileNotFoundError:
            return False
        locked = os.fstat(fd)
        return (on_path.st_dev, on_path.st_ino) == (locked.st_dev, locked.st_ino)
