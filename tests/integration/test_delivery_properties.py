"""Property: whatever is published and however the endpoint fails, every matching event is
acknowledged exactly once, in log order, one package at a time, retries re-sending the same
package. Each example runs a fresh Hookline (API, worker, SQLite file) and a real receiver."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookline.domain import retry
from tests.support.hookline import Hookline, make_settings
from tests.support.receiver import Answer, Receiver

TYPES = ["ORDER.FILLED", "ORDER.NEW", "USER.CREATED", "EXECUTION.FILLED", "REPORT.CREATED"]
FILTERS = [["ALL"], ["ORDER"], ["ORDER", "USER"], ["ORDER", "EXECUTION", "REPORT"]]
FAILURES = [500, 502, 503, 302, 404]
# Events dated an hour back are due at once: examples need not wait out ``config.delay``
# (batching by time has its own tests); size batching and order are what vary here.
PAST = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


REAL_BACKOFF = retry.backoff_seconds


def fast_backoff(failed_attempts: int, *, cap: float = retry.SCHEDULE_CAP) -> float:
    """The real schedule scaled down 50x: order and identity of retries are under test here,
    not their timing (tests/unit/test_retry.py covers the schedule)."""
    return REAL_BACKOFF(failed_attempts, cap=cap) / 50


async def run_example(
    batches: list[list[str]], answers: list[int], types: list[str], max_size: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        receiver = await Receiver().start()
        hookline = await Hookline(make_settings(Path(directory))).start()
        try:
            acme = await hookline.tenant("acme")
            await acme.create_webhook(
                receiver.url(), type=types, config={"max_package_size": max_size}
            )
            receiver.script("/hook", *(Answer(status) for status in answers))
            stored: list[dict[str, Any]] = []
            for number, batch in enumerate(batches):
                stored += await acme.publish(
                    *({"type": t, "object": {"b": number}, "created_at": PAST} for t in batch)
                )
            wanted = [e for e in stored if "ALL" in types or e["type"].split(".")[0] in types]
            await receiver.wait_for(
                lambda: len(receiver.delivered("/hook")) >= len(wanted), timeout=20, what="all"
            )
            check_deliveries(receiver, [e["id"] for e in wanted])
        finally:
            await hookline.stop()
            await receiver.stop()


def check_deliveries(receiver: Receiver, wanted: list[str]) -> None:
    requests = receiver.at("/hook")
    assert [e["id"] for e in receiver.delivered("/hook")] == wanted  # once each, in order
    assert receiver.max_in_flight["/hook"] == 1
    tries: dict[str, list[Any]] = defaultdict(list)
    for request in requests:
        tries[request.package_id].append(request)
    for package_tries in tries.values():
        assert len({r.body for r in package_tries}) == 1  # a retry is the same package
        assert all(not 200 <= r.answered < 300 for r in package_tries[:-1])
    order = list(tries)  # packages in the order they were first sent
    assert [r.package_id for r in requests] == sorted(
        (r.package_id for r in requests), key=order.index
    )  # a package's retries all come before the next package


event_batches = st.lists(
    st.lists(st.sampled_from(TYPES), min_size=1, max_size=20), min_size=1, max_size=5
).map(lambda batches: [*batches, ["ORDER.FILLED"]])  # something every filter matches
failure_scripts = st.lists(st.sampled_from([*FAILURES, 200]), max_size=6)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=event_batches,
    answers=failure_scripts,
    types=st.sampled_from(FILTERS),
    max_size=st.sampled_from([300, 1000, 10240]),
)
def test_every_matching_event_is_acknowledged_once_in_order(
    batches: list[list[str]], answers: list[int], types: list[str], max_size: int
) -> None:
    with mock.patch.object(retry, "backoff_seconds", fast_backoff):
        asyncio.run(run_example(batches, answers, types, max_size))
