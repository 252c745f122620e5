"""The package body (SPEC 4) and the size arithmetic that size-based packing relies on."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookline.catalog import EVENT_TYPES
from hookline.delivery.payload import event_item, package_body
from hookline.domain.events import (
    NoticeTally,
    StoredEvent,
    category_of,
    event_json,
    event_size,
    events_json,
    format_ts,
    parse_ts,
    wire_size,
)
from hookline.domain.packing import ENVELOPE_OVERHEAD

WEBHOOK_ID = "0b7c5a52-3f5e-4d8e-9c1a-2b3c4d5e6f70"
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ITEM_KEYS = ["id", "created_at", "type", "object", "webhook_id"]


def event(seq: int, event_type: str, obj: object, *, at: datetime | None = None) -> StoredEvent:
    return StoredEvent(
        seq=seq,
        id=str(uuid.UUID(int=seq)),
        type=event_type,
        created_at=at or T0 + timedelta(seconds=seq),
        object_json=orjson.dumps(obj).decode(),
    )


def expected_length(events: list[StoredEvent]) -> int:
    return ENVELOPE_OVERHEAD + sum(wire_size(e.type, len(e.object_json.encode())) for e in events)


SAMPLE = [
    event(1, "ORDER.NEW", {"id": "o-1", "side": "BUY", "quantity": "10.5"}),
    event(2, "ORDER.FILLED", {"id": "o-1", "fills": [{"price": 101.25, "qty": 10.5}]}),
    event(3, "USER.CREATED", {"name": 'Zoë "Q" O\'Brien \\ 東京', "tags": [], "x": None}),
]


def test_body_is_the_payload_envelope() -> None:
    body = package_body(SAMPLE, WEBHOOK_ID)
    assert isinstance(body, bytes)
    assert body.startswith(b'{"payload":[{"id":"')
    assert body.endswith(b"}]}")
    parsed = orjson.loads(body)
    assert list(parsed) == ["payload"]
    assert json.loads(body) == parsed


def test_items_carry_every_field_in_log_order() -> None:
    items = json.loads(package_body(SAMPLE, WEBHOOK_ID))["payload"]
    assert len(items) == 3
    for item, source in zip(items, SAMPLE, strict=True):
        assert list(item) == ITEM_KEYS
        assert item["id"] == source.id
        assert item["created_at"] == format_ts(source.created_at)
        assert parse_ts(item["created_at"]) == source.created_at
        assert item["type"] == source.type
        assert item["object"] == json.loads(source.object_json)
        assert item["webhook_id"] == WEBHOOK_ID
    assert [i["id"] for i in items] == [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
    assert items[2]["object"]["name"] == 'Zoë "Q" O\'Brien \\ 東京'


def test_created_at_is_sent_in_utc_with_z() -> None:
    local = datetime(2024, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    item = json.loads(package_body([event(1, "ORDER.NEW", {}, at=local)], WEBHOOK_ID))
    assert item["payload"][0]["created_at"] == "2024-03-01T12:00:00.000000Z"


def test_object_json_is_sent_byte_for_byte() -> None:
    raw = '{ "b" : 1,\n  "a" : [1.0, 2e3] }'
    stored = StoredEvent(1, str(uuid.UUID(int=1)), "ORDER.NEW", T0, raw)
    body = package_body([stored], WEBHOOK_ID)
    assert raw.encode() in body
    assert json.loads(body)["payload"][0]["object"] == {"b": 1, "a": [1.0, 2000.0]}
    assert len(body) == expected_length([stored])


def test_single_item_matches_package_of_one() -> None:
    item = event_item(SAMPLE[0], WEBHOOK_ID)
    assert package_body([SAMPLE[0]], WEBHOOK_ID) == b'{"payload":[' + item + b"]}"
    # wire_size counts one separator comma per event
    assert len(item) + 1 == wire_size(SAMPLE[0].type, len(SAMPLE[0].object_json.encode()))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_size_arithmetic_is_exact(count: int) -> None:
    events = SAMPLE[:count]
    assert len(package_body(events, WEBHOOK_ID)) == expected_length(events)


def test_size_counts_bytes_not_characters() -> None:
    stored = event(1, "USER.CREATED", {"name": "東京🚀"})
    assert len(stored.object_json) < len(stored.object_json.encode())
    assert len(package_body([stored], WEBHOOK_ID)) == expected_length([stored])


def test_empty_package_is_an_empty_payload() -> None:
    assert package_body([], WEBHOOK_ID) == b'{"payload":[]}'


def test_the_notice_adds_wire_sizes_per_category() -> None:
    late = event(4, "ORDER.CANCELLED", {"id": "o-2"}, at=T0 - timedelta(minutes=1))
    appended = [*SAMPLE, late]
    tally = NoticeTally()
    for e in appended:
        tally.add(category_of(e.type), event_size(e.type, e.object_json), e.created_at)
    published = tally.notice("tenant-1", 4)
    assert published.tenant_id == "tenant-1"
    assert published.last_seq == 4
    assert set(published.categories) == {"ORDER", "USER"}
    order = published.categories["ORDER"]
    assert order.size == expected_length([SAMPLE[0], SAMPLE[1], late]) - ENVELOPE_OVERHEAD
    assert order.first_created_at == T0 - timedelta(minutes=1)
    user = published.categories["USER"]
    assert user.size == expected_length([SAMPLE[2]]) - ENVELOPE_OVERHEAD
    assert user.first_created_at == SAMPLE[2].created_at


def test_the_api_shows_each_event_with_its_own_created_at() -> None:
    # A publish's events share one created_at object, formatted once; events that do not
    # (a page of the log, given timestamps) must each show their own, even when they alternate.
    shared = T0 + timedelta(hours=1)
    elsewhere = T0.astimezone(timezone(timedelta(hours=2)))
    events = [event(1, "ORDER.NEW", {}, at=shared), event(2, "ORDER.NEW", {}, at=shared),
              event(3, "USER.CREATED", {"a": 1}), event(4, "ORDER.NEW", {}, at=shared),
              event(5, "ORDER.NEW", {}, at=elsewhere)]  # fmt: skip
    shown = orjson.loads(orjson.dumps(events_json(events)))
    assert [e["created_at"] for e in shown] == [
        "2024-03-01T13:00:00.123456Z", "2024-03-01T13:00:00.123456Z",
        "2024-03-01T12:00:03.123456Z", "2024-03-01T13:00:00.123456Z",
        "2024-03-01T12:00:00.123456Z",
    ]  # fmt: skip
    assert shown[2] == {"id": events[2].id, "sequence": 3, "created_at": shown[2]["created_at"],
                        "type": "USER.CREATED", "object": {"a": 1}}  # fmt: skip
    assert orjson.dumps([event_json(e) for e in events]) == orjson.dumps(events_json(events))


# --------------------------------------------------------------------------- property

json_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\u2028", "é", "東", "🚀"]),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=20,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=15,
)
json_objects = st.dictionaries(json_text, json_values, max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(EVENT_TYPES)), json_objects, st.integers(0, 10**9)),
        min_size=1,
        max_size=8,
    )
)
def test_body_round_trips_arbitrary_objects(
    specs: list[tuple[str, dict[str, object], int]],
) -> None:
    events = [
        StoredEvent(
            seq=n + 1,
            id=str(uuid.UUID(int=n * 7919 + 1)),
            type=event_type,
            created_at=T0 + timedelta(microseconds=offset),
            object_json=orjson.dumps(obj).decode(),
        )
        for n, (event_type, obj, offset) in enumerate(specs)
    ]
    body = package_body(events, WEBHOOK_ID)
    parsed = json.loads(body)
    assert list(parsed) == ["payload"]
    items = parsed["payload"]
    assert [item["object"] for item in items] == [obj for _, obj, _ in specs]
    assert [item["id"] for item in items] == [e.id for e in events]
    assert [item["type"] for item in items] == [e.type for e in events]
    assert [parse_ts(item["created_at"]) for item in items] == [e.created_at for e in events]
    assert all(list(item) == ITEM_KEYS for item in items)
    assert all(item["webhook_id"] == WEBHOOK_ID for item in items)
    assert orjson.loads(body) == parsed
    # what size-based packing relies on: the body length is known before it is built
    assert len(body) == expected_length(events)
