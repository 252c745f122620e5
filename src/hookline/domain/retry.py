"""The retry policy as a pure function: given an attempt's outcome, what happens next."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

SCHEDULE_CAP = 600.0
JITTER = 0.2


def backoff_seconds(failed_attempts: int, *, cap: float = SCHEDULE_CAP) -> float:
    """1, 2, 3, 5, 8, 13, ... seconds (each the sum of the two before), capped at ``cap``."""
    before, current = 1.0, 1.0
    for _ in range(max(failed_attempts, 1) - 1):
        before, current = current, before + current
        if current >= cap:
            return cap
    return min(current, cap)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max((moment - now).total_seconds(), 0.0)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"  # the package is marked failed; the queue moves on
    DISABLE = "disable"  # the webhook is disabled; the package is marked failed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 0  # 0: unlimited
    max_age: timedelta = timedelta(0)  # 0: unlimited
    retry_after_max: float = 600.0
    disable_after: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: a status code, or None for a network error or timeout."""

    status: int | None
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    retry_at: datetime | None = None
    reason: str = ""


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    package_created_at: datetime,
    failing_since: datetime | None,
    now: datetime,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Decide after attempt number ``attempts`` (1-based) of a package."""
    status = outcome.status
    if status is not None and 200 <= status < 300:
        return Decision(Verdict.DELIVERED)
    if status == 410:
        return Decision(Verdict.DISABLE, reason="endpoint answered 410 Gone")
    if failing_since is not None and now - failing_since >= policy.disable_after:
        return Decision(Verdict.DISABLE, reason=f"failing since {failing_since.isoformat()}")
    if policy.max_attempts and attempts >= policy.max_attempts:
        return Decision(Verdict.GIVE_UP, reason=f"{attempts} attempts made")
    if policy.max_age and now - package_created_at >= policy.max_age:
        return Decision(Verdict.GIVE_UP, reason="package older than the maximum age")
    return Decision(
        Verdict.RETRY, retry_at=now + timedelta(seconds=_wait(outcome, attempts, now, policy, rand))
    )


def _wait(
    outcome: Outcome, attempts: int, now: datetime, policy: RetryPolicy, rand: Callable[[], float]
) -> float:
    if outcome.status in (429, 503):
        hinted = parse_retry_after(outcome.retry_after, now=now)
        if hinted is not None:
            return min(max(hinted, 1.0), policy.retry_after_max)
    base = backoff_seconds(attempts)
    return base * (1.0 - JITTER * rand())
