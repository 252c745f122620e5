"""What a worker knows of where a tenant's log holds nothing a filter takes: never more than
the reads it was told about showed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.delivery.quiet import QuietStretches
from hookline.domain.webhooks import CategoryFilter

REPORTS = CategoryFilter.of(["REPORT"], [])
ORDERS = CategoryFilter.of(["ORDER"], [])
EVERYTHING = CategoryFilter.of(["ALL"], [])
NOT_ORDERS = CategoryFilter.of(["ALL"], ["ORDER"])
FILTERS = [REPORTS, ORDERS, EVERYTHING, NOT_ORDERS]


def test_nothing_known_leaves_the_point_where_it_was() -> None:
    quiet = QuietStretches()
    assert quiet.upto("t", REPORTS, after=5) == 5


def test_a_stretch_answers_for_every_point_inside_it() -> None:
    quiet = QuietStretches()
    quiet.add("t", REPORTS, after=10, upto=20)
    assert [quiet.upto("t", REPORTS, after=a) for a in (9, 10, 15, 19, 20, 25)] == [
        9, 20, 20, 20, 20, 25,
    ]  # fmt: skip
    # another tenant, another filter: nothing known
    assert quiet.upto("u", REPORTS, after=15) == 15
    assert quiet.upto("t", ORDERS, after=15) == 15


def test_stretches_that_meet_or_overlap_join() -> None:
    quiet = QuietStretches()
    quiet.add("t", REPORTS, after=10, upto=20)
    quiet.add("t", REPORTS, after=20, upto=30)  # touching
    assert quiet.upto("t", REPORTS, after=10) == 30
    quiet.add("t", REPORTS, after=5, upto=12)  # overlapping its start
    assert quiet.upto("t", REPORTS, after=5) == 30
    quiet.add("t", REPORTS, after=12, upto=18)  # inside: nothing new
    assert quiet.upto("t", REPORTS, after=5) == 30
    assert len(quiet) == 1


def test_the_stretch_furthest_on_is_kept() -> None:
    quiet = QuietStretches()
    quiet.add("t", REPORTS, after=10, upto=20)
    quiet.add("t", REPORTS, after=1, upto=5)  # behind it: dropped
    assert quiet.upto("t", REPORTS, after=1) == 1
    assert quiet.upto("t", REPORTS, after=10) == 20
    quiet.add("t", REPORTS, after=40, upto=50)  # ahead of it, apart: replaces it
    assert quiet.upto("t", REPORTS, after=10) == 10
    assert quiet.upto("t", REPORTS, after=45) == 50


def test_an_empty_or_backwards_stretch_says_nothing() -> None:
    quiet = QuietStretches()
    quiet.add("t", REPORTS, after=10, upto=10)
    quiet.add("t", REPORTS, after=10, upto=3)  # a head older than the cursor
    assert len(quiet) == 0
    assert quiet.upto("t", REPORTS, after=10) == 10


def test_the_least_recently_used_pair_goes_first() -> None:
    quiet = QuietStretches(limit=2)
    quiet.add("a", REPORTS, after=0, upto=10)
    quiet.add("b", REPORTS, after=0, upto=10)
    assert quiet.upto("a", REPORTS, after=0) == 10  # "a" used: "b" is now the oldest
    quiet.add("c", REPORTS, after=0, upto=10)
    assert len(quiet) == 2
    assert quiet.upto("b", REPORTS, after=0) == 0
    assert quiet.upto("a", REPORTS, after=0) == 10
    assert quiet.upto("c", REPORTS, after=0) == 10


CATEGORIES = st.sampled_from(["ORDER", "REPORT", "ACCOUNT"])


@settings(max_examples=300, deadline=None)
@given(
    log=st.lists(CATEGORIES, max_size=40),
    reads=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from(FILTERS)), max_size=30
    ),
    limit=st.integers(1, 3),
)
def test_it_never_claims_a_stretch_that_holds_a_matching_event(
    log: list[str], reads: list[tuple[int, int, CategoryFilter]], limit: int
) -> None:
    """Workers add only what reads showed (nothing the filter takes in ``(after, head]``);
    whatever the order, every answer holds: nothing the filter takes in ``(after, upto]``.
    Reads that find something teach nothing, and are not added."""
    seqs = range(1, len(log) + 1)

    def matching(f: CategoryFilter, after: int, upto: int) -> list[int]:
        return [s for s in seqs if after < s <= upto and f.matches(log[s - 1])]

    quiet = QuietStretches(limit=limit)
    for after, head, f in reads:
        if not matching(f, after, head):
            quiet.add("t", f, after=after, upto=head)
        for f2 in FILTERS:
            for point in range(0, len(log) + 2):
                upto = quiet.upto("t", f2, after=point)
                assert upto >= point
                assert not matching(f2, point, upto), (f2, point, upto)
