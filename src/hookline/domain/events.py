"""Events: type syntax, categories, timestamps, and the bytes each event costs in a package."""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from hookline.catalog import is_known_type
from hookline.errors import ValidationFailed

TYPE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\.[A-Z][A-Z0-9_]{0,63}$")
CATEGORY_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
RESERVED_CATEGORY = "WEBHOOK"  # Hookline's own events; producers may not publish them
# '{"id":"<36>","created_at":"<27>","type":"","object":,"webhook_id":"<36>"}'
_ITEM_OVERHEAD = len('{"id":"","created_at":"","type":"","object":,"webhook_id":""}') + 36 + 27 + 36


def category_of(event_type: str) -> str:
    """``ORDER.FILLED`` -> ``ORDER``."""
    return event_type.split(".", 1)[0]


def check_type(event_type: object, *, open_catalog: bool, field: str = "type") -> str:
    """Validate an event type against the syntax and (unless open) the catalogue."""
    if not isinstance(event_type, str) or not TYPE_PATTERN.fullmatch(event_type):
        raise ValidationFailed(
            "type must look like CATEGORY.ACTION in upper case, e.g. ORDER.FILLED", field=field
        )
    if not open_catalog and not is_known_type(event_type):
        raise ValidationFailed(f"unknown event type {event_type!r}", field=field)
    return event_type


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: fixed width, sorts as text."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return _format_utc(moment)


@functools.lru_cache(maxsize=4096)
def _format_utc(moment: datetime) -> str:
    """Cached: the events of one publish share their timestamp, and a response and the
    worker's rendering format every one of them (uncached, 10-15% of a publish). Keyed
    on UTC values only, so equal keys are the same instant (``fold`` and zones aside)."""
    # isoformat is C and pads the year; strftime was a sixth of the time of a publish.
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(value: object, *, field: str = "created_at") -> datetime:
    """Parse an RFC 3339 timestamp that carries a zone; the result is in UTC."""
    if not isinstance(value, str):
        raise ValidationFailed("must be an RFC 3339 timestamp string", field=field)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            raise ValidationFailed("timestamp needs a time zone (Z or +hh:mm)", field=field)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(f"not an RFC 3339 timestamp: {value!r}", field=field) from None


def wire_size(event_type: str, object_json_len: int) -> int:
    """Bytes one event takes inside a package body (the comma between items included)."""
    return _ITEM_OVERHEAD + len(event_type) + object_json_len + 1


MIN_WIRE_SIZE = wire_size("A.B", len("{}"))  # the smallest event there can be


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as it sits in the log; ``object_json`` is the exact JSON text of ``object``."""

    seq: int
    id: str
    type: str
    created_at: datetime
    object_json: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event about to be appended; ``id`` and ``created_at`` may be assigned later."""

    type: str
    object_json: str
    id: str | None = None
    created_at: datetime | None = None

    @property
    def category(self) -> str:
        return category_of(self.type)


@dataclass(frozen=True, slots=True)
class CategoryBatch:
    """What a publish added to one category: bytes on the wire and its oldest created_at."""

    size: int
    first_created_at: datetime


@dataclass(frozen=True, slots=True)
class Published:
    """Notice that a tenant's log grew up to ``last_seq``: what wakes the delivery workers."""

    tenant_id: str
    last_seq: int
    categories: dict[str, CategoryBatch]


def summarize(tenant_id: str, appended: list[StoredEvent]) -> Published | None:
    """The wake-up notice for freshly appended events (None when nothing new was stored)."""
    if not appended:
        return None
    categories: dict[str, CategoryBatch] = {}
    for event in appended:
        category = category_of(event.type)
        size = wire_size(event.type, len(event.object_json.encode()))
        known = categories.get(category)
        if known is None:
            categories[category] = CategoryBatch(size, event.created_at)
        else:
            first = min(known.first_created_at, event.created_at)
            categories[category] = CategoryBatch(known.size + size, first)
    return Published(tenant_id, appended[-1].seq, categories)


_EVENT_FIELDS = frozenset({"type", "object", "id", "created_at"})
MAX_FUTURE_SKEW = 300  # seconds a producer's created_at may lie ahead of our clock


def parse_new_event(
    raw: object, *, open_catalog: bool, max_object_bytes: int, now: datetime, where: str = ""
) -> NewEvent:
    """Validate one event from a publish call; errors name the field (e.g. ``events[3].type``)."""
    if not isinstance(raw, dict):
        raise ValidationFailed("must be a JSON object", field=where.rstrip(".") or "body")
    if not _EVENT_FIELDS.issuperset(raw):  # no set built per event (a tenth of a publish)
        unknown = sorted(set(raw) - _EVENT_FIELDS)
        raise ValidationFailed("unknown field", field=f"{where}{unknown[0]}")
    event_type = check_type(raw.get("type"), open_catalog=open_catalog, field=f"{where}type")
    if category_of(event_type) == RESERVED_CATEGORY:
        raise ValidationFailed(
            f"{RESERVED_CATEGORY}.* events are Hookline's own and cannot be published",
            field=f"{where}type",
        )
    body = raw.get("object")
    if not isinstance(body, dict):
        raise ValidationFailed("must be a JSON object", field=f"{where}object")
    object_json = orjson.dumps(body).decode()
    if len(object_json) > max_object_bytes:
        raise ValidationFailed(
            f"must be at most {max_object_bytes} bytes of JSON", field=f"{where}object"
        )
    return NewEvent(
        type=event_type,
        object_json=object_json,
        id=_event_id(raw.get("id"), f"{where}id"),
        created_at=_created_at(raw.get("created_at"), f"{where}created_at", now),
    )


def _event_id(value: object, field: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad_id(field)
    except ValueError:
        return _bad_id(field)


def _bad_id(field: str) -> str:
    raise ValidationFailed("must be a UUID", field=field)


def _created_at(value: object, field: str, now: datetime) -> datetime | None:
    if value is None:
        return None
    moment = parse_ts(value, field=field)
    if (moment - now).total_seconds() > MAX_FUTURE_SKEW:
        raise ValidationFailed("must not lie in the future", field=field)
    return moment


def event_json(event: StoredEvent) -> dict[str, object]:
    """An event as the API shows it; ``object`` is embedded as the stored JSON text."""
    return {
        "id": event.id,
        "sequence": event.seq,
        "created_at": format_ts(event.created_at),
        "type": event.type,
        "object": orjson.Fragment(event.object_json),
    }
