"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.hookline import Hookline, make_settings
from tests.support.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def hookline(tmp_path: Path) -> AsyncIterator[Hookline]:
    instance = await Hookline(make_settings(tmp_path)).start()
    yield instance
    await instance.stop()
