"""Time-sortable identifiers (UUIDv7) and the clock, so tests can fake time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from uuid6 import uuid7


def new_id() -> str:
    """A UUIDv7 as text: sorts by creation time, so lists page and filter cheaply."""
    return str(uuid7())


def is_id(text: str) -> bool:
    """Whether ``text`` is a UUID in canonical form, as every id Hookline hands out is."""
    try:
        return str(uuid.UUID(text)) == text.lower() and len(text) == 36
    except ValueError:
        return False


def utcnow() -> datetime:
    return datetime.now(UTC)
