"""Time-sortable identifiers (UUIDv7) and the clock, so tests can fake time."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime

_last_ms = 0  # the millisecond of the last id handed out
_counter = 0  # rand_a of the last id: counts ids within that millisecond


def new_id() -> str:
    """A UUIDv7 (RFC 9562) as text: sorts by creation time, so lists page and filter cheaply.

    The 48-bit millisecond timestamp is followed by a 12-bit counter (RFC 9562 section 6.2,
    method 1), seeded at random below 2048 each new millisecond and counting up within it, then
    62 random bits. Ids from one process (made on its event loop's thread) are strictly
    increasing, and their timestamps stay within a millisecond of the clock: only when the
    counter runs out (after 2049 to 4096 ids in one millisecond), or if the clock steps back,
    does the timestamp run ahead, by as little as keeps the order. (The ``uuid6``
    package we used before added a millisecond per id instead, so under load its timestamps
    ran seconds into the future, and retention, which reads them, drifted with them.)
    """
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    if now_ms > _last_ms:
        _last_ms, _counter = now_ms, secrets.randbits(11)
    else:
        _counter += 1
        if _counter > 0xFFF:
            _last_ms, _counter = _last_ms + 1, secrets.randbits(11)
    value = (_last_ms << 80) | 0x7000 << 64 | _counter << 64 | 0b10 << 62 | secrets.randbits(62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def is_id(text: str) -> bool:
    """Whether ``text`` is a UUID in canonical form, as every id Hookline hands out is."""
    try:
        return str(uuid.UUID(text)) == text.lower() and len(text) == 36
    except ValueError:
        return False


def utcnow() -> datetime:
    return datetime.now(UTC)
