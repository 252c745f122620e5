"""Validating one published event: what the cached type checks may keep, and what they say."""

from __future__ import annotations

import pytest

from hookline.domain import events
from hookline.domain.events import check_type, parse_new_event
from hookline.errors import ValidationFailed
from hookline.ids import utcnow

LONGEST = "A" * 64 + "." + "B" * 64  # the longest type the syntax admits


def _parse(event_type: object) -> object:
    raw = {"type": event_type, "object": {}}
    return parse_new_event(raw, open_catalog=True, max_object_bytes=1000, now=utcnow())


def test_the_longest_valid_type_passes() -> None:
    assert _parse(LONGEST).type == LONGEST  # type: ignore[attr-defined]
    assert check_type(LONGEST, open_catalog=True) == LONGEST


@pytest.mark.parametrize("junk", [LONGEST + "C", "A." + "B" * 100_000, 7, None, ["A.B"]])
def test_long_or_odd_types_are_refused_and_not_cached(junk: object) -> None:
    before = (events._type_problem.cache_info().currsize,
              events._publish_problem.cache_info().currsize)  # fmt: skip
    with pytest.raises(ValidationFailed, match=r"CATEGORY\.ACTION") as refused:
        _parse(junk)
    assert refused.value.field == "type"
    with pytest.raises(ValidationFailed, match=r"CATEGORY\.ACTION"):
        check_type(junk, open_catalog=True)
    after = (events._type_problem.cache_info().currsize,
             events._publish_problem.cache_info().currsize)  # fmt: skip
    assert after == before


def test_reserved_and_unknown_types_keep_their_messages() -> None:
    with pytest.raises(ValidationFailed, match="Hookline's own"):
        _parse("WEBHOOK.DISABLED")
    with pytest.raises(ValidationFailed, match=r"unknown event type 'NOPE\.NEVER'"):
        parse_new_event({"type": "NOPE.NEVER", "object": {}}, open_catalog=False,
                        max_object_bytes=1000, now=utcnow())  # fmt: skip
