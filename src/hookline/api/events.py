"""``/events``: publish (one or many, idempotent on id) and read the log."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from hookline import metrics
from hookline.api.auth import require
from hookline.api.common import AUTHED, problems, services_of
from hookline.api.schemas import Event, EventBatch, EventBatchIn, EventIn, EventPage
from hookline.domain.events import (
    CATEGORY_PATTERN,
    TYPE_PATTERN,
    NewEvent,
    event_json,
    events_json,
    parse_new_event,
)
from hookline.errors import NotFound, ValidationFailed
from hookline.ids import utcnow
from hookline.store.events import (
    EventQuery,
    append_events,
    get_event_for_tenant,
    list_events_for_tenant,
)
from hookline.store.tenants import Principal

router = APIRouter(prefix="/events", tags=["events"])
Publisher = Annotated[Principal, Depends(require("events:publish"))]
Reader = Annotated[Principal, Depends(require("events:read"))]
MAX_OBJECT_BYTES = 262_144
MAX_SEQUENCE = 2**63 - 1  # a 64-bit column: larger cursors would crash the driver

_PUBLISH_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/EventIn"},
                    {"$ref": "#/components/schemas/EventBatchIn"},
                ]
            }
        }
    },
}


def _json(content: object, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _parse_publish(body: bytes, *, open_catalog: bool, limit: int) -> tuple[list[NewEvent], bool]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationFailed("request body is not valid JSON", field="body") from None
    now = utcnow()
    check = functools.partial(
        parse_new_event, open_catalog=open_catalog, max_object_bytes=MAX_OBJECT_BYTES, now=now
    )
    if isinstance(raw, dict) and "events" in raw:
        if set(raw) != {"events"} or not isinstance(raw["events"], list):
            raise ValidationFailed('a batch is {"events": [...]} and nothing else', field="events")
        items = raw["events"]
        if not 1 <= len(items) <= limit:
            raise ValidationFailed(f"give 1..{limit} events per call", field="events")
        try:
            # Called directly: through the partial, each call merged its keywords anew.
            return [
                parse_new_event(
                    item, open_catalog=open_catalog, max_object_bytes=MAX_OBJECT_BYTES, now=now
                )
                for item in items
            ], True
        except ValidationFailed:
            # Check again, naming the place, only now: formatting it for every event was a
            # few percent of a publish. The first event that fails is the one reported.
            for index, item in enumerate(items):
                check(item, where=f"events[{index}].")
            raise
    return [check(raw)], False


@router.post(
    "",
    status_code=201,
    responses={201: {"model": Event | EventBatch}, **problems(*AUTHED)},
    openapi_extra={"requestBody": _PUBLISH_BODY},
)
async def publish(request: Request, principal: Publisher) -> Response:
    """Publish one event, or many as ``{"events": [...]}`` in one transaction.

    An ``id`` the tenant stored before is not stored again; its first version is returned.
    """
    services = services_of(request)
    batch, many = _parse_publish(
        await request.body(),
        open_catalog=services.settings.open_catalog,
        limit=services.settings.max_events_per_publish,
    )
    async with services.db.write() as conn:
        result = await append_events(conn, principal.tenant_id, batch, now=utcnow())
    services.wakeups.published(result.notice)
    metrics.EVENTS_PUBLISHED.inc(len(result.appended))
    if many:
        return _json({"events": events_json(result.events)}, 201)
    return _json(event_json(result.events[0]), 201)


def _filter(values: list[str], pattern: re.Pattern[str], field: str) -> list[str]:
    """Comma-separated or repeated filter values, each checked against ``pattern``."""
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for part in parts:
        if not pattern.fullmatch(part):
            raise ValidationFailed(f"not a valid {field}: {part[:64]!r}", field=field)
    return parts


def _check_moment(moment: datetime, field: str) -> None:
    if moment.tzinfo is None:
        raise ValidationFailed("timestamp needs a time zone (Z or +hh:mm)", field=field)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed("timestamp out of range", field=field) from None


@router.get("", response_model=EventPage, responses=problems(*AUTHED))
async def list_events(
    request: Request,
    principal: Reader,
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQUENCE, description="sequence number to continue after")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[list[str], Query(description="event types (repeat or comma-separate)")] = [],  # noqa: B006
    category: Annotated[list[str], Query()] = [],  # noqa: B006
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Response:
    """The log, oldest first; continue with ``after=meta.next_after``."""
    for moment, field in ((created_after, "created_after"), (created_before, "created_before")):
        if moment is not None:
            _check_moment(moment, field)
    query = EventQuery(
        after=after, limit=limit, types=_filter(type, TYPE_PATTERN, "type"),
        categories=_filter(category, CATEGORY_PATTERN, "category"),
        created_after=created_after, created_before=created_before,
    )  # fmt: skip
    async with services_of(request).db.read() as conn:
        found = await list_events_for_tenant(conn, principal.tenant_id, query)
    next_after = found[-1].seq if found else None
    meta = {"after": after, "limit": limit, "count": len(found), "next_after": next_after}
    return _json({"meta": meta, "data": events_json(found)})


@router.get("/{event_id}", response_model=Event, responses=problems(*AUTHED, 404))
async def get_event(event_id: str, request: Request, principal: Reader) -> Response:
    async with services_of(request).db.read() as conn:
        found = await get_event_for_tenant(conn, principal.tenant_id, event_id.lower())
    if found is None:
        raise NotFound(f"no event {event_id}")
    return _json(event_json(found))


# Keep the request models in the OpenAPI components (the body is parsed by hand for speed).
_DOCUMENTED: tuple[Any, ...] = (EventIn, EventBatchIn)
