"""How waiting events become a package: by size, by count, and by the oldest one's wait."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

ENVELOPE_OVERHEAD = len('{"payload":[]}') - 1  # minus the trailing comma counted per event


class Waiting(NamedTuple):
    """What packing needs to know about a waiting event. (A named tuple: the worker makes
    one per event it reads, and a frozen dataclass is four times slower to make.)"""

    seq: int
    size: int  # bytes on the wire, see domain.events.wire_size
    created_at: datetime


def planning_window(*, max_size: int, max_events: int, min_event_size: int) -> int:
    """How many waiting events to read to plan one package: one more than can fit, so a
    full read always means a full package, and the read stays as small as the package."""
    return min(max_events, max_size // min_event_size + 1)


@dataclass(frozen=True, slots=True)
class PackPlan:
    """``take`` events form the next package, due at ``due_at`` (already due if in the past)."""

    take: int
    size: int
    due_at: datetime
    full: bool


def plan_package(
    waiting: Sequence[Waiting],
    *,
    max_size: int,
    max_events: int,
    delay: timedelta,
    now: datetime,
) -> PackPlan | None:
    """Plan the next package from ``waiting`` (in log order), or None when nothing waits.

    A package takes events while they fit in ``max_size`` bytes (the first one always, so an
    over-size event goes alone) and at most ``max_events``. It is *full* when the next waiting
    event would not fit or the count is reached: then it is due at once; otherwise it is due
    when its oldest event has waited ``delay`` (a ``created_at`` in the future counts as now).
    """
    if not waiting:
        return None
    size = ENVELOPE_OVERHEAD + waiting[0].size
    take = 1
    while take < len(waiting) and take < max_events:
        grown = size + waiting[take].size
        if grown > max_size:
            break
        size, take = grown, take + 1
    full = take < len(waiting) or take >= max_events or size >= max_size
    oldest = min(waiting[0].created_at, now)
    due_at = oldest if full else oldest + delay
    return PackPlan(take=take, size=size, due_at=due_at, full=full)
