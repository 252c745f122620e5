"""The worker's shared cache of tenants' logs: it serves only what it holds completely."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.delivery.eventcache import OVERHEAD, EventCache, Window
from hookline.delivery.payload import event_head
from hookline.domain.events import StoredEvent
from hookline.domain.packing import Waiting

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SIZE = 100
W = 2 * SIZE + OVERHEAD  # what one test event weighs in the cache


def item(seq: int, size: int = SIZE) -> Window:
    event = StoredEvent(seq, f"id-{seq}", "ORDER.FILLED", T0, "{}")
    return Waiting(seq, size, T0), event, event_head(event)


def read(log: list[int], after: int, limit: int) -> list[Window]:
    """What ``seq > after ORDER BY seq LIMIT limit`` returns from a log holding ``log``."""
    return [item(seq) for seq in log if seq > after][:limit]


def read_seqs(log: list[int], after: int, limit: int) -> list[int]:
    return [seq for seq in log if seq > after][:limit]


def seqs(found: list[Window]) -> list[int]:
    return [entry[0].seq for entry in found]


def test_an_empty_cache_holds_nothing_and_says_where_to_read() -> None:
    cache = EventCache()
    assert cache.window("t", after=5, limit=10) == ([], 5)


def test_a_read_serves_windows_inside_it_and_says_where_it_ends() -> None:
    cache = EventCache()
    cache.add("t", after=0, read=read(list(range(1, 11)), 0, 10))
    found, start = cache.window("t", after=3, limit=4)
    assert (seqs(found), start) == ([4, 5, 6, 7], 7)
    found, start = cache.window("t", after=7, limit=10)
    assert (seqs(found), start) == ([8, 9, 10], 10)  # the rest is read from 10 on
    assert cache.window("t", after=10, limit=10) == ([], 10)
    assert cache.window("other", after=3, limit=4) == ([], 3)  # tenants never mix


def test_gaps_in_the_log_are_known_to_be_empty() -> None:
    cache = EventCache()
    log = [2, 3, 7, 20]  # e.g. pruned in between
    cache.add("t", after=0, read=read(log, 0, 10))
    found, start = cache.window("t", after=3, limit=5)
    assert (seqs(found), start) == ([7, 20], 20)


def test_a_read_that_continues_the_stretch_extends_it() -> None:
    log = list(range(1, 31))
    cache = EventCache()
    cache.add("t", after=0, read=read(log, 0, 10))
    cache.add("t", after=5, read=read(log, 5, 20))  # overlaps: only 11..25 are new
    assert len(cache) == 25
    found, start = cache.window("t", after=0, limit=100)
    assert (seqs(found), start) == (list(range(1, 26)), 25)


def test_an_older_read_that_does_not_connect_leaves_the_stretch_alone() -> None:
    log = list(range(1, 101))
    cache = EventCache()
    cache.add("t", after=50, read=read(log, 50, 10))
    cache.add("t", after=10, read=read(log, 10, 10))
    assert seqs(cache.window("t", after=50, limit=3)[0]) == [51, 52, 53]
    assert cache.window("t", after=10, limit=3) == ([], 10)
    cache.add("t", after=80, read=read(log, 80, 10))  # further on: replaces it
    assert cache.window("t", after=50, limit=3) == ([], 50)
    assert seqs(cache.window("t", after=80, limit=3)[0]) == [81, 82, 83]
    assert len(cache) == 10


def test_a_tenant_keeps_its_newest_events_up_to_its_share() -> None:
    log = list(range(1, 101))
    cache = EventCache(per_tenant=10 * W, total=100 * W)
    cache.add("t", after=0, read=read(log, 0, 25))
    assert (len(cache), cache.weight) == (10, 10 * W)
    assert cache.window("t", after=14, limit=5) == ([], 14)  # dropped: read again
    found, start = cache.window("t", after=15, limit=20)
    assert (seqs(found), start) == (list(range(16, 26)), 25)


def test_the_least_recently_used_tenant_goes_first() -> None:
    log = list(range(1, 101))
    cache = EventCache(per_tenant=10 * W, total=20 * W)
    cache.add("a", after=0, read=read(log, 0, 10))
    cache.add("b", after=0, read=read(log, 0, 10))
    cache.window("a", after=0, limit=1)  # a was used last
    cache.add("c", after=0, read=read(log, 0, 10))
    assert (len(cache), cache.weight) == (20, 20 * W)
    assert cache.window("b", after=0, limit=1) == ([], 0)
    assert seqs(cache.window("a", after=0, limit=1)[0]) == [1]
    assert seqs(cache.window("c", after=0, limit=1)[0]) == [1]


def _log_without(gaps: set[int]) -> list[int]:
    return [seq for seq in range(1, 61) if seq not in gaps]


def test_the_bound_is_in_bytes_so_large_events_push_out_many_small_ones() -> None:
    cache = EventCache(per_tenant=50 * W, total=50 * W)
    cache.add("t", after=0, read=[item(seq) for seq in range(1, 41)])
    big = 10 * W  # weighs as much as 20 small ones and more
    cache.add("t", after=40, read=[item(41, big)])
    assert cache.weight <= 50 * W
    found, start = cache.window("t", after=0, limit=100)
    assert found == [] and start == 0  # the front was dropped: read again from the log
    found, start = cache.window("t", after=30, limit=100)
    assert seqs(found) == list(range(31, 42)) and start == 41


def test_an_event_heavier_than_the_bound_is_not_kept() -> None:
    cache = EventCache(per_tenant=10 * W, total=10 * W)
    cache.add("t", after=0, read=[item(1, 100 * SIZE)])
    assert (len(cache), cache.weight) == (0, 0)
    assert cache.window("t", after=0, limit=5) == ([], 0)


operations = st.lists(
    st.tuples(
        st.sampled_from(["read", "window", "drive"]),
        st.sampled_from(["a", "b"]),
        st.integers(0, 40),
        st.integers(1, 15),
    ),
    max_size=60,
)


@settings(max_examples=1000, deadline=None)
@given(
    logs=st.fixed_dictionaries(
        {t: st.sets(st.integers(1, 60), max_size=12).map(_log_without) for t in ("a", "b")}
    ),
    steps=operations,
    per_tenant=st.integers(1, 30).map(lambda n: n * W),
    total=st.integers(1, 40).map(lambda n: n * W),
)
def test_a_window_is_always_exactly_what_the_log_holds(
    logs: dict[str, list[int]],
    steps: list[tuple[str, str, int, int]],
    per_tenant: int,
    total: int,
) -> None:
    """Whatever was read and evicted, a window never skips, invents or reorders an event: it
    is the log's first events after ``after``, and the log has nothing else up to ``start``."""
    cache = EventCache(per_tenant=per_tenant, total=total)
    cursors = {"a": 0, "b": 0}
    for operation, tenant, after, limit in steps:
        log = logs[tenant]
        if operation == "read":
            cache.add(tenant, after=after, read=read(log, after, limit))
            continue
        if operation == "drive":  # what the worker does: cached part, then read the rest
            after = cursors[tenant]
        found, start = cache.window(tenant, after=after, limit=limit)
        assert start >= after
        assert seqs(found) == [seq for seq in log if after < seq <= start][:limit]
        if len(found) == limit:
            assert start == found[-1][0].seq
        if operation == "drive":
            rest = read(log, start, limit)
            cache.add(tenant, after=start, read=rest)
            window = (found + rest)[:limit]
            assert seqs(window) == read_seqs(log, after, limit)
            cursors[tenant] = window[-1][0].seq if window else after
        assert cache.weight == len(cache) * W <= total


def test_the_mean_weight_of_what_a_tenant_has_kept() -> None:
    cache = EventCache()
    assert cache.mean_weight("t") is None
    cache.add("t", after=0, read=[item(1, size=100), item(2, size=300)])
    assert cache.mean_weight("t") == (2 * 100 + OVERHEAD + 2 * 300 + OVERHEAD) // 2
    assert cache.mean_weight("other") is None
