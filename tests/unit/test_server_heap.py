"""What a server process does to the garbage collector once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hookline import server


@pytest.fixture
def _restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("_restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    built_at_start = {"settings": []}
    server._settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == server.GC_THRESHOLDS
    assert server.GC_THRESHOLDS[0] > 700  # the interpreter's default
    # what start-up built is out of the collector's sight: it is in no generation
    assert gc.is_tracked(built_at_start)
    assert all(tracked is not built_at_start for tracked in gc.get_objects())
