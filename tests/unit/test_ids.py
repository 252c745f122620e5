"""UUIDv7 ids: format, order, and timestamps that keep to the clock under load."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from hookline import ids
from hookline.ids import is_id, new_id, new_ids


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


def test_a_batch_of_ids_continues_the_same_order() -> None:
    before = new_id()
    batch = new_ids(3000)  # more than one millisecond's counter can hold after a high seed
    after = new_id()
    made = [before, *batch, after]
    assert made == sorted(made) and len(set(made)) == len(made)
    for made_id in batch:
        parsed = uuid.UUID(made_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, made_id)
    assert new_ids(0) == []


def test_a_batch_draws_fresh_random_bits_for_every_id(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = 1_800_000_000_000 * 1_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    batch = new_ids(1000)
    # same millisecond, consecutive counters: only the 62 random bits tell ids apart beyond it
    assert {_ms(m) for m in batch} == {frozen // 1_000_000}
    assert len({m[19:] for m in batch}) == len(batch)
    # the variant's digit carries two random bits: all four of its values turn up
    assert {m[19] for m in batch} == set("89ab")


def test_ids_drawn_one_by_one_take_fresh_noise_across_refills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = 1_800_000_000_000 * 1_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    # the noise is read ahead, ~2,000 ids' worth at a time: these run past several reads
    made = [new_id() for _ in range(4000)] + new_ids(5000)
    assert len({m[19:] for m in made}) == len(made)  # the random part alone tells them apart


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = 1_800_000_000_000 * 1_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    new_id()  # the parent has noise read ahead when it forks; the child must not reuse it
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's side)
        os.close(read)
        os.write(write, " ".join(new_ids(100)).encode())
        os._exit(0)
    os.close(write)
    mine = set(new_ids(100))
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split())
    os.waitpid(child, 0)
    assert len(theirs) == 100 and not mine & theirs
