"""UUIDv7 ids: format, order, and timestamps that keep to the clock under load."""

from __future__ import annotations

import time
import uuid

import pytest

from hookline import ids
from hookline.ids import is_id, new_id


@pytest.fixture(autouse=True)
def _own_generator_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that fake the clock must not leave ids of the future behind for later tests."""
    monkeypatch.setattr(ids, "_last_ms", ids._last_ms)
    monkeypatch.setattr(ids, "_counter", ids._counter)


def _ms(identifier: str) -> int:
    return int(identifier[:8] + identifier[9:13], 16)


def test_an_id_is_a_canonical_version_7_rfc_9562_uuid() -> None:
    made = new_id()
    parsed = uuid.UUID(made)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert str(parsed) == made and is_id(made)


def test_ids_strictly_increase_and_keep_to_the_clock_under_load() -> None:
    before = time.time_ns() // 1_000_000
    made = [new_id() for _ in range(50_000)]
    after = time.time_ns() // 1_000_000
    assert made == sorted(made) and len(set(made)) == len(made)
    # tens of thousands of ids in a few milliseconds each: the timestamps stay on the clock
    assert before <= _ms(made[0]) and _ms(made[-1]) <= after + 1


def test_a_full_millisecond_moves_on_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = 1_800_000_000_000 * 1_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    # a millisecond holds 2049..4096 ids (the counter starts below 2048): 4097 need exactly two
    made = [new_id() for _ in range(4097)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert {_ms(m) for m in made} == {frozen // 1_000_000, frozen // 1_000_000 + 1}


def test_a_clock_stepping_back_does_not_reorder_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_800_000_000_000 * 1_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    first = new_id()
    now[0] -= 5_000 * 1_000_000  # five seconds back
    second = new_id()
    assert second > first and _ms(second) == _ms(first)
