"""Request and response shapes, for validation and for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hookline.domain.webhooks import DEFAULT_DELAY, DEFAULT_MAX_PACKAGE_SIZE


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WebhookConfigIn(Strict):
    delay: str | None = Field(None, examples=["1s", "30s", "5m"], pattern=r"^[1-9][0-9]?[sm]$")
    max_package_size: int | None = Field(None, ge=100, le=1_048_576)


class WebhookCreate(Strict):
    title: str = Field(min_length=1, max_length=100)
    url: str = Field(max_length=1000, examples=["https://example.com/webhooks"])
    type: list[str] = Field(default_factory=lambda: ["ALL"], examples=[["ALL"], ["ORDER"]])
    exclude_type: list[str] = Field(default_factory=list)
    enabled: bool = True
    config: WebhookConfigIn = Field(default_factory=WebhookConfigIn)


class WebhookPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=100)
    url: str | None = Field(None, max_length=1000)
    type: list[str] | None = None
    exclude_type: list[str] | None = None
    enabled: bool | None = None
    config: WebhookConfigIn | None = None


class WebhookConfig(BaseModel):
    delay: str = DEFAULT_DELAY
    max_package_size: int = DEFAULT_MAX_PACKAGE_SIZE


class Webhook(BaseModel):
    id: str
    created_at: datetime
    updated_at: datetime
    title: str
    url: str
    type: list[str]
    exclude_type: list[str]
    enabled: bool
    config: WebhookConfig
    disabled_reason: str | None = None


class ListMeta(BaseModel):
    offset: int
    limit: int
    count: int
    total_count: int
    sort: str | None = None
    order: Literal["ASC", "DESC"] | None = None


class WebhookList(BaseModel):
    meta: ListMeta
    data: list[Webhook]


class EventIn(BaseModel):
    """One event to publish. ``id`` makes the publish idempotent."""

    type: str = Field(examples=["ORDER.FILLED"])
    object: dict[str, Any]
    id: str | None = Field(None, description="UUID; an id already stored is not stored again")
    created_at: datetime | None = None


class EventBatchIn(BaseModel):
    events: list[EventIn]


class Event(BaseModel):
    id: str
    sequence: int
    created_at: datetime
    type: str
    object: dict[str, Any]


class EventBatch(BaseModel):
    events: list[Event]


class EventPageMeta(BaseModel):
    after: int
    limit: int
    count: int
    next_after: int | None


class EventPage(BaseModel):
    meta: EventPageMeta
    data: list[Event]


class DeliveredEvent(BaseModel):
    """An event as delivered inside a package."""

    id: str
    created_at: datetime
    type: str
    object: dict[str, Any]
    webhook_id: str


class PackageBody(BaseModel):
    """The body of every request Hookline sends to a webhook."""

    payload: list[DeliveredEvent]


class PackageOut(BaseModel):
    id: str
    kind: Literal["queue", "test"]
    status: Literal["pending", "delivered", "failed", "dropped"]
    event_ids: list[str]
    event_count: int
    size: int
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    finished_at: datetime | None
    last_status: int | None
    last_error: str | None


class PageMeta(BaseModel):
    offset: int
    limit: int
    count: int
    total_count: int


class PackageList(BaseModel):
    meta: PageMeta
    data: list[PackageOut]


class AttemptOut(BaseModel):
    id: str
    package_id: str
    number: int
    trigger: Literal["scheduled", "test"]
    url: str
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_headers: dict[str, str] | None
    response_excerpt: str | None


class AttemptList(BaseModel):
    meta: PageMeta
    data: list[AttemptOut]


class TestResponse(BaseModel):
    status: int
    headers: dict[str, str]
    body: str


class TestResult(BaseModel):
    url: str
    package_id: str
    response: TestResponse | None = None
    error: str | None = None


class TestQueued(BaseModel):
    url: str
    package_id: str


class SecretOut(BaseModel):
    secret: str = Field(description="The newest secret: sign-checks must accept it")
    previous: list[str] = Field(description="Older secrets still signing during an overlap")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    field: str | None = None


class JWKS(BaseModel):
    keys: list[dict[str, str]]
