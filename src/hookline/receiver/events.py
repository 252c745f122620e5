"""The events a delivery carries, parsed from the package envelope."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import BadPayload


@dataclass(frozen=True)
class Event:
    """One event of a package.

    ``id`` is stable across re-deliveries (de-duplicate on it); ``object`` is the full
    snapshot of the resource after the change; ``webhook_id`` is the subscription that
    matched it.
    """

    id: str
    created_at: datetime
    type: str
    object: dict[str, Any]
    webhook_id: str

    @property
    def category(self) -> str:
        """The part of ``type`` before the dot: ``ORDER`` for ``ORDER.FILLED``."""
        return self.type.partition(".")[0]

    @property
    def action(self) -> str:
        """The part of ``type`` after the dot: ``FILLED`` for ``ORDER.FILLED``."""
        return self.type.partition(".")[2]


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"event field {name!r} must be a non-empty string")
    return value


def _timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadPayload(f"created_at is not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise BadPayload(f"created_at has no time zone: {value!r}")
    return parsed


def parse_event(raw: Any) -> Event:
    """One event from its JSON object; raises :class:`BadPayload` if a field is missing."""
    if not isinstance(raw, dict):
        raise BadPayload("each event must be a JSON object")
    obj = raw.get("object")
    if not isinstance(obj, dict):
        raise BadPayload("event field 'object' must be a JSON object")
    return Event(
        id=_text(raw, "id"),
        created_at=_timestamp(_text(raw, "created_at")),
        type=_text(raw, "type"),
        object=obj,
        webhook_id=_text(raw, "webhook_id"),
    )


def parse_package(body: bytes | str) -> list[Event]:
    """The events of a package body ``{"payload": [event, ...]}``, in delivery order.

    Raises :class:`BadPayload` for anything else. Verify the signatures first (see
    :func:`hookline.receiver.verify`, which also parses).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from exc
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, list):
        raise BadPayload('body must be a JSON object with a "payload" array')
    return [parse_event(raw) for raw in payload]
