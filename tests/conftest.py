"""Fixtures shared by the integration and end-to-end tests.

Integration tests that take ``hookline``, ``database_url`` or ``settings_for`` run twice: on a
SQLite file and on PostgreSQL. PostgreSQL tests need ``HOOKLINE_TEST_POSTGRES_URL`` (an admin
URL; each test gets its own database). Unset, they skip with that reason; set but unreachable,
they fail.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hookline.config import Settings
from tests.support import postgres
from tests.support.hookline import Hookline, make_settings
from tests.support.receiver import Receiver

SettingsFor = Callable[..., Settings]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(postgres.ENV)
    if not url:
        pytest.skip(f"{postgres.ENV} is not set: no PostgreSQL to test against")
    problem = postgres.reachable(url)
    if problem:
        pytest.fail(f"{postgres.ENV} is set but the server is unreachable: {problem}")
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    name = postgres.create_template(postgres_url)
    yield name
    postgres.drop_database(postgres_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hookline.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    name = postgres.create_database(url, request.getfixturevalue("postgres_template"))
    yield postgres.with_database(url, name)
    postgres.drop_database(url, name)


@pytest.fixture
def settings_for(database_url: str, tmp_path: Path) -> SettingsFor:
    """Settings on this test's database, with overrides: ``settings_for(request_timeout="1s")``."""

    def build(**overrides: Any) -> Settings:
        return make_settings(tmp_path, **{"database_url": database_url, **overrides})

    return build


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def hookline(settings_for: SettingsFor) -> AsyncIterator[Hookline]:
    instance = await Hookline(settings_for()).start()
    yield instance
    await instance.stop()
