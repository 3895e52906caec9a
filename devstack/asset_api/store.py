"""SQLite storage for assets and Idempotency-Key replays.

One connection per thread (waitress keeps its worker threads), WAL so readers
never wait for the writer, and `BEGIN IMMEDIATE` around every read-modify-write
so concurrent updates serialise instead of losing each other. Knows nothing of
HTTP; assets are plain JSON objects keyed by (kind, id).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, the list order
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    body    TEXT NOT NULL,                      -- the whole stored asset as JSON
    UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS replays (
    principal   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    headers     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (principal, kind, key)
);
"""

Asset = dict[str, Any]
Filters = Mapping[str, Sequence[str]]


class IdTaken(Exception):
    """An asset of that kind already has that id."""


@dataclass(frozen=True)
class Replay:
    """The response first given to a POST with an Idempotency-Key."""

    fingerprint: str
    status: int
    headers: dict[str, str]
    body: str


def field_text(body: str, name: str) -> str | None:
    """A top-level field as the text a query parameter is compared with."""
    value = json.loads(body).get(name, _MISSING)
    if value is _MISSING:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_MISSING = object()


class Store:
    """Assets and replays in one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._create_schema()

    def _create_schema(self) -> None:
        conn = self.connection()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.create_function("field_text", 2, field_text, deterministic=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the write lock from its first statement."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A transaction whose statements all see one snapshot."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def ping(self) -> None:
        self.connection().execute("SELECT 1").fetchone()


def get(conn: sqlite3.Connection, kind: str, asset_id: str) -> Asset | None:
    row = conn.execute(
        "SELECT body FROM assets WHERE kind = ? AND id = ?", (kind, asset_id)
    ).fetchone()
    return json.loads(row[0]) if row else None


def insert(conn: sqlite3.Connection, kind: str, asset: Asset) -> None:
    try:
        conn.execute(
            "INSERT INTO assets (kind, id, body) VALUES (?, ?, ?)",
            (kind, asset["id"], json.dumps(asset)),
        )
    except sqlite3.IntegrityError as exc:
        raise IdTaken(asset["id"]) from exc


def update(conn: sqlite3.Connection, kind: str, asset: Asset) -> None:
    # UPDATE, not delete-and-insert: the row keeps its seq, so its list place.
    conn.execute(
        "UPDATE assets SET body = ? WHERE kind = ? AND id = ?",
        (json.dumps(asset), kind, asset["id"]),
    )


def delete(conn: sqlite3.Connection, kind: str, asset_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM assets WHERE kind = ? AND id = ?", (kind, asset_id)
    )
    return cursor.rowcount > 0


def page(
    conn: sqlite3.Connection, kind: str, filters: Filters, offset: int, limit: int
) -> tuple[list[Asset], int]:
    """One slice of the kind's assets in creation order, and the matching total."""
    where, params = _where(kind, filters)
    count_sql = f"SELECT count(*) FROM assets WHERE {where}"  # noqa: S608
    (total,) = conn.execute(count_sql, params).fetchone()
    rows = conn.execute(
        f"SELECT body FROM assets WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset],
    ).fetchall()
    return [json.loads(body) for (body,) in rows], total


def _where(kind: str, filters: Filters) -> tuple[str, list[Any]]:
    # Only placeholders are interpolated; names and values travel as parameters.
    clauses, params = ["kind = ?"], [kind]
    for name, values in filters.items():
        marks = ", ".join("?" * len(values))
        clauses.append(f"field_text(body, ?) IN ({marks})")
        params += [name, *values]
    return " AND ".join(clauses), params


def find_replay(
    conn: sqlite3.Connection, principal: str, kind: str, key: str
) -> Replay | None:
    row = conn.execute(
        "SELECT fingerprint, status, headers, body FROM replays"
        " WHERE principal = ? AND kind = ? AND key = ?",
        (principal, kind, key),
    ).fetchone()
    if row is None:
        return None
    fingerprint, status, headers, body = row
    return Replay(fingerprint, status, json.loads(headers), body)


def save_replay(
    conn: sqlite3.Connection, principal: str, kind: str, key: str, replay: Replay
) -> None:
    conn.execute(
        "INSERT INTO replays (principal, kind, key, fingerprint, status, headers, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            principal,
            kind,
            key,
            replay.fingerprint,
            replay.status,
            json.dumps(replay.headers),
            replay.body,
        ),
    )
