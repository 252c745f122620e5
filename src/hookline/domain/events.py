"""Events: type syntax, categories, timestamps, and the bytes each event costs in a package."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from hookline.catalog import is_known_type
from hookline.errors import ValidationFailed

TYPE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\.[A-Z][A-Z0-9_]{0,63}$")
CATEGORY_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
RESERVED_CATEGORY = "WEBHOOK"  # Hookline's own events; producers may not publish them
# '{"id":"<36>","created_at":"<27>","type":"","object":,"webhook_id":"<36>"}'
_ITEM_OVERHEAD = len('{"id":"","created_at":"","type":"","object":,"webhook_id":""}') + 36 + 27 + 36


@functools.lru_cache(maxsize=1024)
def category_of(event_type: str) -> str:
    """``ORDER.FILLED`` -> ``ORDER``. Cached: a publish asks for every event's, of a few types."""
    return event_type.split(".", 1)[0]


def check_type(
    event_type: object, *, open_catalog: bool, where: str = "", publishing: bool = False
) -> str:
    """Validate an event type against the syntax and (unless open) the catalogue; when
    ``publishing``, also refuse the category of Hookline's own events. Errors name the field
    ``{where}type``, formatted only then.

    Only strings as long as a type can be reach the cached checks, so a producer sending
    long junk cannot make the caches keep it."""
    if not isinstance(event_type, str) or len(event_type) > _LONGEST_TYPE:
        raise ValidationFailed(_SYNTAX, field=f"{where}type")
    problem = (_publish_problem if publishing else _type_problem)(event_type, open_catalog)
    if problem is not None:
        raise ValidationFailed(problem, field=f"{where}type")
    return event_type


_SYNTAX = "type must look like CATEGORY.ACTION in upper case, e.g. ORDER.FILLED"
_LONGEST_TYPE = 64 + 1 + 64  # what TYPE_PATTERN admits


@functools.lru_cache(maxsize=1024)
def _type_problem(event_type: str, open_catalog: bool) -> str | None:
    """What is wrong with a type, if anything. Cached: a publish repeats a few types, and
    the check was a tenth of the time spent validating an event."""
    if not TYPE_PATTERN.fullmatch(event_type):
        return _SYNTAX
    if not open_catalog and not is_known_type(event_type):
        return f"unknown event type {event_type!r}"
    return None


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


def event_size(event_type: str, object_json: str) -> int:
    """``wire_size`` of an event from its JSON text. Text that is all ASCII (``isascii`` is
    a flag lookup) is as long in UTF-8 as in characters, so it is not encoded to count."""
    length = len(object_json) if object_json.isascii() else len(object_json.encode())
    return wire_size(event_type, length)


class StoredEvent(NamedTuple):
    """An event as it sits in the log; ``object_json`` is the exact JSON text of ``object``.

    Events are named tuples, not frozen dataclasses: as immutable, and made four times
    faster (a frozen dataclass sets each field through ``object.__setattr__``), which counts
    at two per published event."""

    seq: int
    id: str
    type: str
    created_at: datetime
    object_json: str


class NewEvent(NamedTuple):
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


class NoticeTally:
    """A wake-up notice in the making: what each new event adds to its category's bytes and
    oldest created_at, added as the log's writer makes the event's row."""

    __slots__ = ("_firsts", "_sizes")

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self._firsts: dict[str, datetime] = {}

    def add(self, category: str, size: int, created_at: datetime) -> None:
        sizes, firsts = self._sizes, self._firsts
        if category in sizes:
            sizes[category] += size
            if created_at < firsts[category]:
                firsts[category] = created_at
        else:
            sizes[category], firsts[category] = size, created_at

    def notice(self, tenant_id: str, last_seq: int) -> Published:
        firsts = self._firsts
        categories = {c: CategoryBatch(size, firsts[c]) for c, size in self._sizes.items()}
        return Published(tenant_id, last_seq, categories)


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
    event_type = check_type(
        raw.get("type"), open_catalog=open_catalog, where=where, publishing=True
    )
    body = raw.get("object")
    if not isinstance(body, dict):
        raise ValidationFailed("must be a JSON object", field=f"{where}object")
    encoded = orjson.dumps(body)
    if len(encoded) > max_object_bytes:
        raise ValidationFailed(
            f"must be at most {max_object_bytes} bytes of JSON", field=f"{where}object"
        )
    # Field names are formatted only for what was given: most events give neither. Made
    # with positional arguments: by keyword, the tuple took twice as long (0.4 µs).
    event_id, created_at = raw.get("id"), raw.get("created_at")
    return NewEvent(
        event_type,
        encoded.decode(),
        None if event_id is None else _event_id(event_id, f"{where}id"),
        None if created_at is None else _created_at(created_at, f"{where}created_at", now),
    )


@functools.lru_cache(maxsize=1024)
def _publish_problem(event_type: str, open_catalog: bool) -> str | None:
    """``_type_problem``, and the reserved category producers may not publish to."""
    problem = _type_problem(event_type, open_catalog)
    if problem is None and category_of(event_type) == RESERVED_CATEGORY:
        return f"{RESERVED_CATEGORY}.* events are Hookline's own and cannot be published"
    return problem


def _event_id(value: object, field: str) -> str:
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad_id(field)
    except ValueError:
        return _bad_id(field)


def _bad_id(field: str) -> str:
    raise ValidationFailed("must be a UUID", field=field)


def _created_at(value: object, field: str, now: datetime) -> datetime:
    moment = parse_ts(value, field=field)
    if (moment - now).total_seconds() > MAX_FUTURE_SKEW:
        raise ValidationFailed("must not lie in the future", field=field)
    return moment


def event_json(event: StoredEvent) -> dict[str, object]:
    """An event as the API shows it; ``object`` is embedded as the stored JSON text."""
    return events_json((event,))[0]


def events_json(events: Iterable[StoredEvent]) -> list[dict[str, object]]:
    """``event_json`` of each event, in one loop: a call per event took half as long again,
    and a publish's answer holds up to thousands. The events of one publish share their
    created_at, the same object: it is formatted once for all of them."""
    shown: list[dict[str, object]] = []
    moment, text = None, ""
    for seq, event_id, event_type, created_at, object_json in events:
        if created_at is not moment:
            moment, text = created_at, format_ts(created_at)
        shown.append(
            {
                "id": event_id,
                "sequence": seq,
                "created_at": text,
                "type": event_type,
                "object": orjson.Fragment(object_json),
            }
        )
    return shown
