"""UTCDateTime on SQLite writes and reads exactly what SQLAlchemy's DATETIME would, faster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import DATETIME

from hookline.store.tables import UTCDateTime

_DIALECT = sqlite.dialect()
_THEIRS_IN = DATETIME().bind_processor(_DIALECT)
_THEIRS_OUT = DATETIME().result_processor(_DIALECT, None)
_OURS_IN = UTCDateTime().bind_processor(_DIALECT)
_OURS_OUT = UTCDateTime().result_processor(_DIALECT, None)

_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                           timezones=_zones))  # fmt: skip
def test_sqlite_text_is_sqlalchemys_and_reads_back_as_aware_utc(moment: datetime) -> None:
    assert _THEIRS_IN is not None and _THEIRS_OUT is not None
    assert _OURS_IN is not None and _OURS_OUT is not None
    text = _OURS_IN(moment)
    assert text == _THEIRS_IN(moment.astimezone(UTC).replace(tzinfo=None))
    back = _OURS_OUT(text)
    assert back == moment and back.tzinfo is UTC
    assert _THEIRS_OUT(text).replace(tzinfo=UTC) == back


def test_null_stays_null() -> None:
    assert _OURS_IN is not None and _OURS_OUT is not None
    assert _OURS_IN(None) is None and _OURS_OUT(None) is None


def test_text_written_without_microseconds_still_reads() -> None:
    assert _OURS_OUT is not None
    assert _OURS_OUT("2026-11-23 21:43:24") == datetime(2026, 11, 23, 21, 43, 24, tzinfo=UTC)


def test_text_with_an_offset_is_converted_not_relabelled() -> None:
    assert _OURS_OUT is not None
    assert _OURS_OUT("2026-11-23 21:43:24+02:00") == datetime(2026, 11, 23, 19, 43, 24, tzinfo=UTC)
