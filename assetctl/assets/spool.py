"""Stdin, copied once to a file with no name so that a batch can read it twice (check,
then send) without holding it in memory. Nothing here parses what it holds."""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import weakref
from typing import IO, Any


class Spool:
    """Stdin copied to a temporary file without a name, to be read several times.

    The file has no name on disk (O_TMPFILE, or unlinked at once), so the copy is gone
    when the process ends, however it ends; every reader keeps its own position.
    """

    def __init__(self, stdin: IO[str]) -> None:
        self._file = tempfile.TemporaryFile(prefix="assetctl-stdin-")
        self._lock = threading.Lock()
        _SPOOLED.append(weakref.finalize(self, self._file.close))
        raw = getattr(stdin, "buffer", None)
        if raw is not None:  # the bytes as sent: decoding them is the readers' job
            shutil.copyfileobj(raw, self._file)
            return
        while text := stdin.read(1 << 16):
            self._file.write(text.encode("utf-8", "surrogateescape"))

    def open(self) -> IO[bytes]:
        return io.BufferedReader(SpoolReader(self))

    def read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)


class SpoolReader(io.RawIOBase):
    """One reader of a spool, with a position of its own."""

    def __init__(self, spool: Spool) -> None:
        super().__init__()
        self._spool, self._pos = spool, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._spool.read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise io.UnsupportedOperation("a stdin spool seeks from its start only")
        self._pos = offset + (self._pos if whence == io.SEEK_CUR else 0)
        return self._pos

    def tell(self) -> int:
        return self._pos


_SPOOLED: list[weakref.finalize] = []


def remove_spooled() -> None:
    """Close stdin spools (their data goes with them); commands call this at the end.

    One that is left open (a command that failed first) closes when its `Source` is
    dropped, or when the process ends.
    """
    while _SPOOLED:
        _SPOOLED.pop()()
