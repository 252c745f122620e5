"""Idempotency: delivery is at-least-once, so drop events already handled.

Hookline re-sends a package after a failed or timed-out attempt (and possibly after a crash),
with the same events and the same ``webhook-id``. De-duplicate on the event ``id``.

:func:`dedupe` records an event as seen when it is checked. If your handler can fail after
that, record in the same transaction as your side effects instead (or answer with an error
*before* calling :func:`dedupe`), otherwise the retried delivery will be skipped as seen.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from .events import Event


@runtime_checkable
class SeenStore(Protocol):
    """Remembers keys. ``seen`` atomically records ``key`` and returns whether it was
    already recorded (so of two concurrent calls with one key, exactly one gets False)."""

    def seen(self, key: str) -> bool:
        """Record ``key``; True if it had been recorded before."""
        ...


class MemorySeenStore:
    """In-process store keeping the ``max_items`` most recently recorded keys (thread-safe).

    Forgets everything on restart and is per process; use :class:`SQLiteSeenStore` (or your
    database) when that matters.
    """

    def __init__(self, max_items: int = 100_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.max_items = max_items
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        """Record ``key``; True if it had been recorded before (and not yet evicted)."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return True
            self._keys[key] = None
            if len(self._keys) > self.max_items:
                self._keys.popitem(last=False)
            return False

    def __len__(self) -> int:
        return len(self._keys)


class SQLiteSeenStore:
    """Store in an SQLite file (stdlib ``sqlite3``): survives restarts, and is shared safely
    by threads (one connection behind a lock) and by processes (``INSERT OR IGNORE`` on a
    primary key is atomic in SQLite)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hookline_seen"
            " (key TEXT PRIMARY KEY, seen_at INTEGER NOT NULL)"
        )

    def seen(self, key: str) -> bool:
        """Record ``key``; True if it had been recorded before."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO hookline_seen (key, seen_at) VALUES (?, ?)",
                (key, int(time.time())),
            )
            return cursor.rowcount == 0

    def prune(self, older_than_seconds: int) -> int:
        """Forget keys recorded more than ``older_than_seconds`` ago; returns how many."""
        cutoff = int(time.time()) - older_than_seconds
        with self._lock:
            cursor = self._db.execute("DELETE FROM hookline_seen WHERE seen_at < ?", (cutoff,))
            return cursor.rowcount

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


def dedupe(events: Iterable[Event], store: SeenStore) -> list[Event]:
    """The events whose ``id`` the store had not seen, in order; records them as seen."""
    return [event for event in events if not store.seen(event.id)]
