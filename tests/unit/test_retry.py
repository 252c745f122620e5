"""The retry policy (SPEC 4): back-off schedule, jitter, Retry-After, verdicts per outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.domain.retry import (
    JITTER,
    SCHEDULE_CAP,
    Decision,
    Outcome,
    RetryPolicy,
    Verdict,
    backoff_seconds,
    decide,
    parse_retry_after,
)

NOW = datetime(2024, 5, 17, 9, 30, 0, tzinfo=UTC)
CREATED = NOW - timedelta(minutes=5)
UNLIMITED = RetryPolicy()


def run(
    status: int | None,
    *,
    retry_after: str | None = None,
    attempts: int = 1,
    created: datetime = CREATED,
    failing_since: datetime | None = None,
    policy: RetryPolicy = UNLIMITED,
    rand: float = 0.0,
) -> Decision:
    return decide(
        Outcome(status, retry_after),
        attempts=attempts,
        package_created_at=created,
        failing_since=failing_since,
        now=NOW,
        policy=policy,
        rand=lambda: rand,
    )


def wait_of(decision: Decision) -> float:
    assert decision.verdict is Verdict.RETRY
    assert decision.retry_at is not None
    return (decision.retry_at - NOW).total_seconds()


# --------------------------------------------------------------------------- back-off


def test_backoff_schedule_is_fibonacci_capped_at_600() -> None:
    expected = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 600, 600, 600]
    assert [backoff_seconds(n) for n in range(1, len(expected) + 1)] == expected
    assert SCHEDULE_CAP == 600.0


def test_backoff_before_any_failure_is_one_second() -> None:
    assert backoff_seconds(0) == 1
    assert backoff_seconds(-3) == 1


def test_backoff_custom_cap() -> None:
    assert [backoff_seconds(n, cap=10) for n in range(1, 8)] == [1, 2, 3, 5, 8, 10, 10]


def test_backoff_huge_attempt_count_is_cap() -> None:
    assert backoff_seconds(10_000_000) == 600


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500))
def test_backoff_properties(n: int) -> None:
    current, following = backoff_seconds(n), backoff_seconds(n + 1)
    assert 1 <= current <= following <= 600
    if n >= 14:
        assert current == 600
    if n >= 3 and current < 600:
        assert current == backoff_seconds(n - 1) + backoff_seconds(n - 2)


# --------------------------------------------------------------------------- jitter


@pytest.mark.parametrize("attempts", [1, 2, 5, 13, 14, 100])
def test_no_jitter_waits_exactly_the_base(attempts: int) -> None:
    assert wait_of(run(500, attempts=attempts, rand=0.0)) == backoff_seconds(attempts)


def test_jitter_at_its_largest_shortens_the_wait_by_a_fifth() -> None:
    assert JITTER == 0.2
    assert wait_of(run(500, attempts=14, rand=0.5)) == pytest.approx(540.0, abs=1e-6)
    assert wait_of(run(500, attempts=14, rand=0.999999)) == pytest.approx(480.0, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 60),
    st.floats(0.0, 1.0, exclude_max=True),
    st.sampled_from([None, 301, 400, 404, 408, 429, 500, 502, 503, 504]),
)
def test_jitter_keeps_wait_between_80_and_100_percent_of_base(
    attempts: int, r: float, status: int | None
) -> None:
    base = backoff_seconds(attempts)
    wait = wait_of(run(status, attempts=attempts, rand=r))
    # timedelta keeps microseconds: allow one of rounding
    assert 0.8 * base - 1e-6 <= wait <= base + 1e-6
    assert wait == pytest.approx(base * (1 - 0.2 * r), abs=1e-6)


# --------------------------------------------------------------------------- Retry-After


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("  30 ", 30.0),
        ("0", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        (http_date(NOW + timedelta(seconds=90)), 90.0),
        ("Fri, 17 May 2024 09:32:00 GMT", 120.0),
        (http_date(NOW - timedelta(hours=1)), 0.0),  # in the past: now
        ("Fri, 17 May 2024 09:32:00 -0000", None),  # no usable zone
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 1.0),  # clamped up to 1 s
        ("86400", 600.0),  # clamped down to retry_after_max
        (http_date(NOW + timedelta(seconds=45)), 45.0),
        (http_date(NOW - timedelta(minutes=1)), 1.0),
        (http_date(NOW + timedelta(days=2)), 600.0),
    ],
)
def test_retry_after_honoured_for_429_and_503(status: int, header: str, expected: float) -> None:
    # attempts=10 gives a base of 55 s, so a wait of exactly `expected` proves the header won
    assert wait_of(run(status, retry_after=header, attempts=10, rand=0.5)) == expected


def test_retry_after_clamped_to_policy_maximum() -> None:
    policy = RetryPolicy(retry_after_max=300.0)
    assert wait_of(run(429, retry_after="3600", policy=policy)) == 300.0
    assert wait_of(run(503, retry_after=http_date(NOW + timedelta(hours=1)), policy=policy)) == 300


@pytest.mark.parametrize("status", [500, 502, 400, None])
def test_retry_after_ignored_for_other_outcomes(status: int | None) -> None:
    assert wait_of(run(status, retry_after="300", attempts=4, rand=0.0)) == 5.0


@pytest.mark.parametrize("header", ["soon", "", "Fri, 17 May 2024 09:32:00 -0000"])
def test_unusable_retry_after_falls_back_to_backoff(header: str) -> None:
    assert wait_of(run(429, retry_after=header, attempts=6, rand=0.0)) == 13.0


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_parse_retry_after_never_raises_on_ascii(value: str) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or result >= 0


@pytest.mark.parametrize("header", ["²", "1²", "³"])
def test_retry_after_with_non_ascii_digits_is_ignored_not_raised(header: str) -> None:
    assert parse_retry_after(header, now=NOW) is None
    # the receiver controls this header: a hostile value must not crash the decision
    assert run(429, retry_after=header, attempts=3).verdict is Verdict.RETRY


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert run(status) == Decision(Verdict.DELIVERED)


@pytest.mark.parametrize(
    "status",
    [
        None,
        100,
        199,
        300,
        301,
        302,
        304,
        307,
        308,
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        429,
        500,
        502,
        503,
        504,
    ],
)
def test_other_outcomes_retry(status: int | None) -> None:
    decision = run(status, attempts=3)
    assert decision.verdict is Verdict.RETRY
    assert decision.retry_at == NOW + timedelta(seconds=3)


def test_410_disables_the_webhook() -> None:
    decision = run(410)
    assert decision.verdict is Verdict.DISABLE
    assert decision.retry_at is None
    assert "410" in decision.reason


def test_success_wins_over_every_limit() -> None:
    policy = RetryPolicy(max_attempts=1, max_age=timedelta(seconds=1), disable_after=timedelta(1))
    decision = run(
        200,
        attempts=50,
        created=NOW - timedelta(days=60),
        failing_since=NOW - timedelta(days=60),
        policy=policy,
    )
    assert decision.verdict is Verdict.DELIVERED


def test_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert run(500, attempts=4, policy=policy).verdict is Verdict.RETRY
    given_up = run(500, attempts=5, policy=policy)
    assert given_up.verdict is Verdict.GIVE_UP
    assert given_up.retry_at is None
    assert run(None, attempts=6, policy=policy).verdict is Verdict.GIVE_UP


def test_unlimited_attempts_by_default() -> None:
    decision = run(500, attempts=1_000_000)
    assert decision.verdict is Verdict.RETRY
    assert decision.retry_at == NOW + timedelta(seconds=600)


def test_max_age() -> None:
    policy = RetryPolicy(max_age=timedelta(hours=1))
    young = run(503, created=NOW - timedelta(minutes=59, seconds=59), policy=policy)
    assert young.verdict is Verdict.RETRY
    assert run(503, created=NOW - timedelta(hours=1), policy=policy).verdict is Verdict.GIVE_UP
    assert run(None, created=NOW - timedelta(days=2), policy=policy).verdict is Verdict.GIVE_UP


def test_unlimited_age_by_default() -> None:
    assert run(500, created=NOW - timedelta(days=365)).verdict is Verdict.RETRY


def test_failing_longer_than_disable_after_disables() -> None:
    policy = RetryPolicy(disable_after=timedelta(days=30))
    assert run(500, failing_since=NOW - timedelta(days=29, hours=23), policy=policy).verdict is (
        Verdict.RETRY
    )
    disabled = run(500, failing_since=NOW - timedelta(days=30), policy=policy)
    assert disabled.verdict is Verdict.DISABLE
    assert disabled.retry_at is None
    assert run(None, failing_since=NOW - timedelta(days=31)).verdict is Verdict.DISABLE


def test_disable_after_takes_precedence_over_give_up() -> None:
    policy = RetryPolicy(max_attempts=1, disable_after=timedelta(days=1))
    decision = run(500, attempts=5, failing_since=NOW - timedelta(days=2), policy=policy)
    assert decision.verdict is Verdict.DISABLE


def test_not_failing_never_disables() -> None:
    assert run(500, failing_since=None, created=NOW - timedelta(days=400)).verdict is (
        Verdict.RETRY
    )
