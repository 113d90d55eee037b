"""Durable SQLite queue: pending events with leases, dead letters and persisted SDK state."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    body            TEXT    NOT NULL,
    created_at      REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     REAL    NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    dead_at         REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
"""


# A row may be claimed when its lease ran out, or when the lease ends further ahead than any lease
# is long (the wall clock stepped back after it was taken): a clock step never strands rows.
_CLAIMABLE = "(lease_until <= ? OR lease_until > ?)"


@dataclass(frozen=True)
class QueuedEvent:
    seq: int
    idempotency_key: str
    body: str  # compact JSON of the event, exactly as sent


@dataclass(frozen=True)
class DeadLetter:
    idempotency_key: str
    status: str  # "conflict", "rejected", or a request-level error code for poison events
    error_code: str | None
    error_message: str | None
    dead_at: float  # unix seconds
    event: dict[str, Any]


class Store:
    """Thin, thread-safe wrapper over one SQLite connection.

    Every public method is one short transaction, so several processes can share the file:
    claiming rows uses BEGIN IMMEDIATE plus a lease, which is what prevents double sends.
    """

    # The longest lease this process hands out (claim() raises it): a lease further in the future
    # than that can only come from a wall clock that stepped back, and is taken as lapsed.
    max_lease_sec: float = 300.0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Queued payloads may be sensitive: create the file private before SQLite opens it.
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so transactions are explicit.
        self._db = sqlite3.connect(
            str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed track() survives power loss, not just a process crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                self._db.close()
                raise RuntimeError(
                    f"{self.path} was written by a newer codex-sdk (schema {version}); upgrade"
                )
            with self._tx():
                for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.closed = False

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._db.close()

    # -- queue -------------------------------------------------------------------------

    def enqueue(self, idempotency_key: str, body: str) -> bool:
        """Insert an event; False if the key is already queued with the same body.

        A queued key with a *different* body raises ValueError: the server would answer
        "conflict" anyway, and failing at track() time tells the caller immediately.
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT body FROM events WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is not None:
                if row[0] != body:
                    raise ValueError(
                        f"idempotency_key {idempotency_key!r} is already queued "
                        "with different content"
                    )
                return False
            db.execute(
                "INSERT INTO events (idempotency_key, body, created_at) VALUES (?, ?, ?)",
                (idempotency_key, body, time.time()),
            )
            return True

    def claim(
        self,
        owner: str,
        *,
        max_events: int,
        max_bytes: int,
        lease_sec: float,
        max_seq: int | None = None,
    ) -> list[QueuedEvent]:
        """Lease the oldest unleased events, up to max_events and max_bytes of encoded JSON.

        max_bytes counts event bodies plus one separator each; the caller adds the envelope.
        max_seq bounds a sync pass to what was queued when it began. The rowid-ordered scan
        stops after max_events matches, so claiming stays cheap on a long queue.
        """
        now = time.time()
        self.max_lease_sec = max(self.max_lease_sec, lease_sec)
        picked: list[QueuedEvent] = []
        total = 0
        with self._tx() as db:
            rows = db.execute(
                "SELECT seq, idempotency_key, body FROM events "  # noqa: S608 - a constant
                f"WHERE {_CLAIMABLE} AND seq <= ? ORDER BY seq LIMIT ?",
                (
                    now,
                    now + self.max_lease_sec,
                    max_seq if max_seq is not None else 2**63 - 1,
                    max_events,
                ),
            ).fetchall()
            for seq, key, body in rows:
                size = len(body) + 1
                if picked and total + size > max_bytes:
                    break
                picked.append(QueuedEvent(seq, key, body))
                total += size
            if picked:
                db.executemany(
                    "UPDATE events SET lease_owner = ?, lease_until = ? WHERE seq = ?",
                    [(owner, now + lease_sec, ev.seq) for ev in picked],
                )
        return picked

    def renew(
        self, owner: str, events: Sequence[QueuedEvent], lease_sec: float
    ) -> list[QueuedEvent]:
        """Extend our lease; returns the subset we still own (a lapsed lease may be taken)."""
        if not events:
            return []
        until = time.time() + lease_sec
        with self._tx() as db:
            owned = []
            for ev in events:
                cur = db.execute(
                    "UPDATE events SET lease_until = ? WHERE seq = ? AND lease_owner = ?",
                    (until, ev.seq, owner),
                )
                if cur.rowcount:
                    owned.append(ev)
            return owned

    def release(self, owner: str, events: Sequence[QueuedEvent], *, attempted: bool) -> None:
        """Give rows back to the queue (only those we still own)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE events SET lease_owner = NULL, lease_until = 0, "
                "attempts = attempts + ? WHERE seq = ? AND lease_owner = ?",
                [(1 if attempted else 0, ev.seq, owner) for ev in events],
            )

    def complete(
        self,
        delivered: Sequence[str],
        dead: Sequence[tuple[str, str, str | None, str | None]],
    ) -> int:
        """Delete delivered keys and move dead ones (key, status, code, message) aside.

        Keyed by idempotency key regardless of lease owner: once the server has answered
        for a key, that answer is final whoever holds the row. Returns rows dead-lettered.
        """
        now = time.time()
        moved = 0
        with self._tx() as db:
            db.executemany(
                "DELETE FROM events WHERE idempotency_key = ?", [(k,) for k in delivered]
            )
            for key, status, code, message in dead:
                row = db.execute(
                    "SELECT body FROM events WHERE idempotency_key = ?", (key,)
                ).fetchone()
                if row is None:
                    continue  # another process already settled it
                db.execute(
                    "INSERT INTO dead_letters (idempotency_key, body, status, error_code, "
                    "error_message, dead_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, row[0], status, code, message, now),
                )
                db.execute("DELETE FROM events WHERE idempotency_key = ?", (key,))
                moved += 1
        return moved

    def max_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def in_flight(self) -> int:
        with self._lock:
            now = time.time()
            row = self._db.execute(
                f"SELECT COUNT(*) FROM events WHERE NOT ({_CLAIMABLE})",  # noqa: S608 - a constant
                (now, now + self.max_lease_sec),
            ).fetchone()
            return int(row[0])

    def has_claimable(self) -> bool:
        with self._lock:
            now = time.time()
            row = self._db.execute(
                f"SELECT 1 FROM events WHERE {_CLAIMABLE} LIMIT 1",  # noqa: S608 - a constant
                (now, now + self.max_lease_sec),
            ).fetchone()
            return row is not None

    def contains(self, idempotency_key: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM events WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            return row is not None

    # -- dead letters ------------------------------------------------------------------

    def dead_letter_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idempotency_key, body, status, error_code, error_message, dead_at "
                "FROM dead_letters ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            DeadLetter(key, status, code, message, dead_at, json.loads(body))
            for key, body, status, code, message, dead_at in rows
        ]

    def dead_letter(self, idempotency_key: str) -> DeadLetter | None:
        with self._lock:
            row = self._db.execute(
                "SELECT idempotency_key, body, status, error_code, error_message, dead_at "
                "FROM dead_letters WHERE idempotency_key = ? ORDER BY seq DESC LIMIT 1",
                (idempotency_key,),
            ).fetchone()
        if row is None:
            return None
        key, body, status, code, message, dead_at = row
        return DeadLetter(key, status, code, message, dead_at, json.loads(body))

    def requeue_dead_letters(self, keys: Sequence[str] | None = None) -> int:
        """Move dead letters back into the queue (skipping keys already queued again)."""
        moved = 0
        with self._tx() as db:
            if keys is None:
                rows = db.execute(
                    "SELECT seq, idempotency_key, body FROM dead_letters ORDER BY seq"
                ).fetchall()
            else:
                rows = []
                for key in keys:
                    rows += db.execute(
                        "SELECT seq, idempotency_key, body FROM dead_letters "
                        "WHERE idempotency_key = ? ORDER BY seq",
                        (key,),
                    ).fetchall()
            for seq, key, body in rows:
                cur = db.execute(
                    "INSERT OR IGNORE INTO events (idempotency_key, body, created_at) "
                    "VALUES (?, ?, ?)",
                    (key, body, time.time()),
                )
                if cur.rowcount:  # delete only what was moved: a key already queued keeps it
                    db.execute("DELETE FROM dead_letters WHERE seq = ?", (seq,))
                    moved += 1
        return moved

    # -- persisted state ---------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (k, v) VALUES (?, ?) "
                "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (key, json.dumps(value)),
            )
