"""Time-sortable identifiers (UUIDv7) and the clock, so tests can fake time."""

from __future__ import annotations

from datetime import UTC, datetime

from uuid6 import uuid7


def new_id() -> str:
    """A UUIDv7 as text: sorts by creation time, so lists page and filter cheaply."""
    return str(uuid7())


def utcnow() -> datetime:
    return datetime.now(UTC)
