"""plan_package: which waiting events form the next package, and when it is due (SPEC 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.domain.packing import ENVELOPE_OVERHEAD, PackPlan, Waiting, plan_package

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=30)
DELAY = timedelta(seconds=5)


def waiting(
    *sizes: int, start: datetime = T0, step: timedelta = timedelta(seconds=1)
) -> list[Waiting]:
    return [Waiting(seq=i + 1, size=s, created_at=start + i * step) for i, s in enumerate(sizes)]


def plan(
    events: list[Waiting],
    *,
    max_size: int = 10_240,
    max_events: int = 100,
    delay: timedelta = DELAY,
    now: datetime = NOW,
) -> PackPlan | None:
    return plan_package(events, max_size=max_size, max_events=max_events, delay=delay, now=now)


def test_envelope_overhead_is_the_envelope_minus_one_comma() -> None:
    assert ENVELOPE_OVERHEAD == 13
    assert len(b'{"payload":[]}') - 1 == ENVELOPE_OVERHEAD


def test_nothing_waiting_gives_no_package() -> None:
    assert plan([]) is None


@pytest.mark.parametrize(
    ("sizes", "max_size", "max_events", "expected"),
    [
        # one small event, room for more: not full, waits for the delay
        pytest.param([100], 1000, 10, PackPlan(1, 113, T0 + DELAY, False), id="single-not-full"),
        # everything fits, nothing else waiting, under both limits: not full
        pytest.param(
            [100, 200, 300], 1000, 10, PackPlan(3, 613, T0 + DELAY, False), id="all-fit-not-full"
        ),
        # sizes sum exactly to max_size: full because the size is reached
        pytest.param([100, 200, 287], 600, 10, PackPlan(3, 600, T0, True), id="exactly-full"),
        # one byte more than max_size for the third: it stays behind, package is full
        pytest.param([100, 200, 288], 600, 10, PackPlan(2, 313, T0, True), id="third-does-not-fit"),
        # second does not fit: first goes alone, due at once
        pytest.param([500, 500], 600, 10, PackPlan(1, 513, T0, True), id="second-does-not-fit"),
        # an over-size event goes alone, in an over-size package
        pytest.param([5000, 10], 1000, 10, PackPlan(1, 5013, T0, True), id="oversize-first"),
        pytest.param([5000], 1000, 10, PackPlan(1, 5013, T0, True), id="oversize-alone"),
        # a small event followed by an over-size one: the small one goes alone
        pytest.param([10, 5000], 1000, 10, PackPlan(1, 23, T0, True), id="oversize-second"),
        # the count limit: two of five
        pytest.param([10] * 5, 10_000, 2, PackPlan(2, 33, T0, True), id="count-reached"),
        # count reached exactly with nothing else waiting: still full (due at once)
        pytest.param([10] * 3, 10_000, 3, PackPlan(3, 43, T0, True), id="count-exactly"),
        # max_events=1 always sends one at a time
        pytest.param([10, 10], 10_000, 1, PackPlan(1, 23, T0, True), id="one-at-a-time"),
    ],
)
def test_plan_table(sizes: list[int], max_size: int, max_events: int, expected: PackPlan) -> None:
    assert plan(waiting(*sizes), max_size=max_size, max_events=max_events) == expected


def test_created_at_in_the_future_counts_as_now() -> None:
    future = NOW + timedelta(minutes=10)
    events = waiting(100, start=future)
    assert plan(events) == PackPlan(1, 113, NOW + DELAY, False)
    assert plan(events, max_events=1) == PackPlan(1, 113, NOW, True)


def test_due_at_uses_the_oldest_event_not_the_newest() -> None:
    events = waiting(10, 10, 10, start=T0, step=timedelta(seconds=2))
    result = plan(events, delay=timedelta(minutes=1))
    assert result is not None
    assert result.due_at == T0 + timedelta(minutes=1)
    assert result.take == 3


def test_overdue_package_is_due_in_the_past() -> None:
    events = waiting(10, start=NOW - timedelta(hours=1))
    result = plan(events)
    assert result is not None
    assert result.due_at == NOW - timedelta(hours=1) + DELAY
    assert result.due_at < NOW


# --------------------------------------------------------------------------- properties


@st.composite
def waiting_lists(draw: st.DrawFn, min_size: int = 0) -> list[Waiting]:
    sizes = draw(st.lists(st.integers(1, 5000), min_size=min_size, max_size=60))
    gaps = draw(st.lists(st.integers(0, 120), min_size=len(sizes), max_size=len(sizes)))
    seq_gaps = draw(st.lists(st.integers(1, 5), min_size=len(sizes), max_size=len(sizes)))
    events, seq, at = [], 0, T0
    for size, gap, seq_gap in zip(sizes, gaps, seq_gaps, strict=True):
        seq += seq_gap
        at += timedelta(seconds=gap)
        events.append(Waiting(seq=seq, size=size, created_at=at))
    return events


max_sizes = st.integers(100, 1_048_576)
max_counts = st.integers(1, 50)
delays = st.integers(1, 99 * 60).map(lambda s: timedelta(seconds=s))
nows = st.integers(-600, 7200).map(lambda s: T0 + timedelta(seconds=s))


@settings(max_examples=200, deadline=None)
@given(waiting_lists(min_size=1), max_sizes, max_counts, delays, nows)
def test_plan_properties(
    events: list[Waiting], max_size: int, max_events: int, delay: timedelta, now: datetime
) -> None:
    result = plan_package(events, max_size=max_size, max_events=max_events, delay=delay, now=now)
    assert result is not None
    take = result.take
    sizes = [e.size for e in events]

    assert 1 <= take <= min(len(events), max_events)
    assert result.size == ENVELOPE_OVERHEAD + sum(sizes[:take])
    # within the size limit, unless a single over-size event goes alone
    assert result.size <= max_size or take == 1
    # maximal: the next event would break the size or the count
    if take < len(events):
        assert take == max_events or result.size + sizes[take] > max_size

    size_reached = result.size >= max_size
    assert result.full == (take < len(events) or take == max_events or size_reached)

    oldest = min(events[0].created_at, now)
    assert result.due_at == (oldest if result.full else oldest + delay)


@settings(max_examples=200, deadline=None)
@given(waiting_lists(), max_sizes, max_counts)
def test_repeated_planning_consumes_every_event_once_in_order(
    events: list[Waiting], max_size: int, max_events: int
) -> None:
    remaining = list(events)
    packages: list[list[Waiting]] = []
    while True:
        result = plan_package(
            remaining, max_size=max_size, max_events=max_events, delay=DELAY, now=NOW
        )
        if result is None:
            break
        assert result.take >= 1
        package, remaining = remaining[: result.take], remaining[result.take :]
        packages.append(package)
        # every package but the last is full (due at once): nothing could be added to it
        if remaining:
            assert result.full
        assert len(packages) <= len(events)

    assert remaining == []
    flattened = [e for package in packages for e in package]
    assert flattened == events  # no loss, no duplicate, no reordering
    assert [e.seq for e in flattened] == sorted(e.seq for e in events)
    for package in packages:
        assert 1 <= len(package) <= max_events
        assert ENVELOPE_OVERHEAD + sum(e.size for e in package) <= max_size or len(package) == 1
