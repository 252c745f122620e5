"""Settings from HOOKLINE_* environment variables, and the duration syntax they use."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from hookline.config import Settings, default_database_url, parse_duration


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HOOKLINE_* variable of the outer environment leaks in; cwd is a scratch directory."""
    for name in list(os.environ):
        if name.upper().startswith("HOOKLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("15s", timedelta(seconds=15)),
        ("10m", timedelta(minutes=10)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("7d", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("45", timedelta(seconds=45)),
        (" 20 s ", timedelta(seconds=20)),
        (5, timedelta(seconds=5)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["bad", "", "10x", "1 day", "-5s", "5 m s", "ms", "1e3s", None])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'hookline.db'}"
    assert settings.database_url == default_database_url()
    assert settings.allow_insecure_targets is False
    assert settings.open_catalog is False
    assert settings.connect_timeout == timedelta(seconds=5)
    assert settings.request_timeout == timedelta(seconds=15)
    assert settings.retry_max_attempts == 0
    assert settings.retry_max_age == timedelta(0)
    assert settings.retry_after_max == timedelta(seconds=600)
    assert settings.disable_after == timedelta(days=30)
    assert settings.source_address is None


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "HOOKLINE_DATABASE_URL": "postgresql+asyncpg://hookline@db/hookline",
        "HOOKLINE_DISABLE_AFTER": "7d",
        "HOOKLINE_CONNECT_TIMEOUT": "500ms",
        "HOOKLINE_REQUEST_TIMEOUT": "20s",
        "HOOKLINE_RETRY_MAX_AGE": "24h",
        "HOOKLINE_RETRY_AFTER_MAX": "10m",
        "HOOKLINE_RETRY_MAX_ATTEMPTS": "12",
        "HOOKLINE_LEASE_DURATION": "90s",
        "HOOKLINE_ALLOW_INSECURE_TARGETS": "true",
        "HOOKLINE_OPEN_CATALOG": "1",
        "HOOKLINE_SOURCE_ADDRESS": "192.0.2.10",
        "HOOKLINE_MAX_CONCURRENCY": "32",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://hookline@db/hookline"
    assert settings.disable_after == timedelta(days=7)
    assert settings.connect_timeout == timedelta(milliseconds=500)
    assert settings.request_timeout == timedelta(seconds=20)
    assert settings.retry_max_age == timedelta(hours=24)
    assert settings.retry_after_max == timedelta(minutes=10)
    assert settings.retry_max_attempts == 12
    assert settings.lease_duration == timedelta(seconds=90)
    assert settings.allow_insecure_targets is True
    assert settings.open_catalog is True
    assert settings.source_address == "192.0.2.10"
    assert settings.max_concurrency == 32


def test_plain_number_of_seconds_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_RESYNC_INTERVAL", "45")
    assert Settings().resync_interval == timedelta(seconds=45)


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLE_AFTER", "1d")
    assert Settings().disable_after == timedelta(days=30)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/lib/hookline.db",
        "sqlite+aiosqlite:///x.db",
        "postgresql://h/db",
        "postgres://h/db",
    ],
)
def test_good_database_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HOOKLINE_DATABASE_URL", url)
    assert Settings().database_url == url


@pytest.mark.parametrize(
    "url", ["mysql://h/db", "hookline.db", "", "http://db/", "sqlitefoo:///x", "postgresxyz://h"]
)
def test_bad_database_url_fails(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HOOKLINE_DATABASE_URL", url)
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert [e["loc"] for e in exc.value.errors()] == [("database_url",)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOOKLINE_DISABLE_AFTER", "a month"),
        ("HOOKLINE_CONNECT_TIMEOUT", "5 parsecs"),
        ("HOOKLINE_LEASE_DURATION", "4s"),
        ("HOOKLINE_MAX_CONCURRENCY", "0"),
        ("HOOKLINE_RETRY_MAX_ATTEMPTS", "-1"),
        ("HOOKLINE_MAX_PACKAGE_EVENTS", "100001"),
        ("HOOKLINE_ALLOW_INSECURE_TARGETS", "perhaps"),
    ],
)
def test_bad_values_fail(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    field = name.removeprefix("HOOKLINE_").lower()
    assert [e["loc"] for e in exc.value.errors()] == [(field,)]


def test_lease_of_five_seconds_is_the_minimum() -> None:
    settings = Settings(lease_duration="5s", request_timeout="3s")
    assert settings.lease_duration == timedelta(seconds=5)


def test_lease_shorter_than_request_timeout_or_resync_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(lease_duration="10s", request_timeout="15s")
