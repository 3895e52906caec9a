"""The batch journal: what a run has finished, so a rerun after Ctrl-C does the rest.

One JSON-lines file per batch in the user's state directory, named by a hash of the
command and its inputs. Its first line holds the run id that idempotency keys derive
from, so a resumed run resends a lost create under the same key. Each finished item is
appended and fsynced before the next is reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import platformdirs

from assetctl.assets.runlock import RunLock
from assetctl.errors import ConfigError, InputError

log = logging.getLogger(__name__)

DONE_ACTIONS = frozenset({"created", "updated", "unchanged", "deleted"})
# A journal this old describes a batch nobody resumed: what it calls done may have
# changed on the server since, so it is dropped instead of trusted.
MAX_AGE_DAYS = 7


def journal_dir() -> Path:
    return Path(platformdirs.user_state_dir("assetctl")) / "journals"


def batch_key(parts: Mapping[str, Any]) -> str:
    """A stable name for one batch: the command, its target and its inputs."""
    canonical = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """One finished item as the journal keeps it."""

    digest: str
    action: str
    id: str | None


class Journal:
    """An open journal; use as a context manager so the lock is released."""

    def __init__(
        self, key: str, directory: Path | None = None, *, fresh: bool = False
    ) -> None:
        self.directory = directory or journal_dir()
        self.fresh = fresh  # forget an interrupted run of the same batch
        self.path = self.directory / f"{key}.jsonl"
        self._lock = RunLock(Path(f"{self.path}.lock"))
        self._done: dict[str, Entry] = {}
        self._stream: IO[str] | None = None
        self.run_id = ""
        self.resumed = False

    def __enter__(self) -> Journal:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            acquired = self._lock.acquire()
        except OSError as exc:
            raise _unusable(self.directory, exc) from exc
        if not acquired:
            # Only a live process can hold the lock: the kernel drops a dead one's.
            raise InputError(
                "another run of this same batch is running right now",
                hint="wait for it to finish (or stop it), then run the command again",
            )
        try:
            _drop_old_journals(self.directory)
            if self.fresh or _is_old(self.path):  # ours: locked by us just now
                self.path.unlink(missing_ok=True)
            self._load()
            self._stream = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            self._lock.release()
            raise _unusable(self.path, exc) from exc
        if self._ends_mid_line():
            self._stream.write("\n")  # a kill cut the last line; start clean
        if not self.run_id:
            self.run_id = uuid.uuid4().hex
            self._append({"run": self.run_id})
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stream:
            self._stream.close()
        self._lock.release()

    def done(self, digest: str) -> Entry | None:
        return self._done.get(digest)

    def idempotency_key(self, digest: str) -> str:
        """Stable per item within a run and its resumptions, new for a fresh run."""
        seed = hashlib.sha256(f"{self.run_id}:{digest}".encode()).hexdigest()
        return str(uuid.UUID(seed[:32]))

    def record(
        self, digest: str, action: str, asset_id: str | None, *, sync: bool = True
    ) -> None:
        """Append one finished item; with `sync=False` it is durable at `sync()`.

        Not added to the in-memory index: that only answers for earlier runs, which
        keeps memory flat however long this run is.
        """
        self._append({"item": digest, "action": action, "id": asset_id}, sync=sync)

    def sync(self) -> None:
        """Make every recorded item durable: one fsync for the items that finished
        together (an fsync costs a millisecond or more: one per item held a whole
        batch back to that pace)."""
        if self._stream is not None:
            self._stream.flush()
            os.fsync(self._stream.fileno())

    def discard(self) -> None:
        """Forget the batch: it completed, so the same command later is a new batch."""
        if self._stream:
            self._stream.close()
            self._stream = None
        self.path.unlink(missing_ok=True)

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as stream:
            for line in stream:
                self._read_line(line)
        self.resumed = bool(self.run_id)

    def _ends_mid_line(self) -> bool:
        if not self.path.stat().st_size:
            return False
        with self.path.open("rb") as stream:
            stream.seek(-1, os.SEEK_END)
            return stream.read(1) != b"\n"

    def _read_line(self, line: str) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            return  # a line cut short by a kill: that item was not finished
        if not isinstance(entry, dict):
            return  # not ours (a hand edit): it proves nothing was done
        if isinstance(entry.get("run"), str):
            self.run_id = entry["run"]
        elif entry.get("action") in DONE_ACTIONS and isinstance(entry.get("item"), str):
            digest = entry["item"]
            asset_id = entry.get("id")
            self._done[digest] = Entry(
                digest, entry["action"], None if asset_id is None else str(asset_id)
            )

    def _append(self, entry: Mapping[str, Any], *, sync: bool = True) -> None:
        assert self._stream is not None
        self._stream.write(json.dumps(entry) + "\n")
        self._stream.flush()  # a killed process loses nothing flushed
        if sync:
            os.fsync(self._stream.fileno())  # nor does a crashed machine


def _drop_old_journals(directory: Path) -> None:
    """Journals of batches left unfinished for MAX_AGE_DAYS, unless a run holds one."""
    for path in directory.glob("*.jsonl"):
        try:
            if _is_old(path) and not Path(f"{path}.lock").exists():
                log.info(
                    "dropping %s: unfinished for over %d days", path.name, MAX_AGE_DAYS
                )
                path.unlink()
        except OSError:
            continue  # another run's business; never a reason to fail this one


def _is_old(path: Path) -> bool:
    try:
        return path.stat().st_mtime < time.time() - MAX_AGE_DAYS * 86400
    except FileNotFoundError:
        return False


def _unusable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot use the batch journal at {path}: {exc.strerror or exc}",
        hint="point XDG_STATE_HOME at a folder you can write (journals live in "
        "<state>/assetctl/journals)",
    )


class NoJournal(Journal):
    """For `--dry-run` and single requests: remembers nothing, writes nothing."""

    def __init__(self) -> None:
        super().__init__("none", Path(os.devnull))
        self.run_id = uuid.uuid4().hex

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def record(
        self, digest: str, action: str, asset_id: str | None, *, sync: bool = True
    ) -> None:
        return None

    def sync(self) -> None:
        return None

    def discard(self) -> None:
        return None
