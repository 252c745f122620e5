"""``/webhooks``: subscriptions, their secrets, packages, attempts and test sends."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from hookline.api.auth import require
from hookline.api.common import AUTHED, problems, services_of
from hookline.api.schemas import (
    AttemptList,
    PackageList,
    SecretOut,
    TestQueued,
    TestResult,
    Webhook,
    WebhookCreate,
    WebhookList,
    WebhookPatch,
)
from hookline.delivery.testsend import deliver_test, prepare_test
from hookline.domain.webhooks import WebhookSpec
from hookline.errors import ValidationFailed
from hookline.ids import utcnow
from hookline.store import deliveries
from hookline.store import webhooks as store
from hookline.store.tenants import Principal

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Reader = Annotated[Principal, Depends(require("webhooks:read"))]
Admin = Annotated[Principal, Depends(require("webhooks:admin"))]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def webhook_json(record: store.WebhookRecord) -> dict[str, Any]:
    spec = record.spec
    return {
        "id": record.id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "title": spec.title,
        "url": spec.url,
        "type": list(spec.types),
        "exclude_type": list(spec.exclude_types),
        "enabled": spec.enabled,
        "config": {"delay": spec.delay, "max_package_size": spec.max_package_size},
        "disabled_reason": record.disabled_reason,
    }


def _spec_from(body: WebhookCreate) -> WebhookSpec:
    defaults = WebhookSpec(title=body.title, url=body.url)
    return WebhookSpec(
        title=body.title,
        url=body.url,
        types=tuple(body.type),
        exclude_types=tuple(body.exclude_type),
        enabled=body.enabled,
        delay=body.config.delay or defaults.delay,
        max_package_size=body.config.max_package_size or defaults.max_package_size,
    )


def _patched(spec: WebhookSpec, patch: WebhookPatch) -> WebhookSpec:
    changes = patch.model_dump(exclude_unset=True, exclude={"config"})
    if "config" in patch.model_fields_set and patch.config is None:
        changes["config"] = None
    config = patch.config.model_dump(exclude_unset=True) if patch.config else {}
    fields = {**changes, **{f"config.{k}": v for k, v in config.items()}}
    nulls = [k for k, v in fields.items() if v is None]
    if nulls:
        raise ValidationFailed("cannot be null; leave it out instead", field=nulls[0])
    renamed = {"type": "types", "exclude_type": "exclude_types"}
    values: dict[str, Any] = {
        renamed.get(k, k): tuple(v) if isinstance(v, list) else v for k, v in changes.items()
    }
    return dataclasses.replace(spec, **values, **config)


@router.post("", status_code=201, response_model=Webhook, responses=problems(*AUTHED))
async def create_webhook(body: WebhookCreate, request: Request, principal: Admin) -> Any:
    """Create a webhook. It receives events published from now on."""
    services = services_of(request)
    spec = _spec_from(body).validated(allow_insecure=services.settings.allow_insecure_targets)
    async with services.db.write() as conn:
        record = await store.create_webhook(conn, principal.tenant_id, spec, now=utcnow())
    services.wakeups.webhook_changed(record.id)
    return webhook_json(record)


@router.get("", response_model=WebhookList, responses=problems(*AUTHED))
async def list_webhooks(
    request: Request,
    principal: Reader,
    sort: Literal["created_at", "updated_at", "title", "url", "enabled"] = "created_at",
    order: Literal["ASC", "DESC", "asc", "desc"] = "ASC",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> Any:
    """The tenant's webhooks, a page at a time."""
    async with services_of(request).db.read() as conn:
        records, total = await store.list_webhooks_for_tenant(
            conn, principal.tenant_id, sort=sort, descending=order.upper() == "DESC",
            offset=offset, limit=limit,
        )  # fmt: skip
    meta = {
        "offset": offset, "limit": limit, "count": len(records), "total_count": total,
        "sort": sort, "order": order.upper(),
    }  # fmt: skip
    return {"meta": meta, "data": [webhook_json(r) for r in records]}


@router.get("/{webhook_id}", response_model=Webhook, responses=problems(*AUTHED, 404))
async def get_webhook(webhook_id: str, request: Request, principal: Reader) -> Any:
    async with services_of(request).db.read() as conn:
        record = await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
    return webhook_json(record)


@router.patch("/{webhook_id}", response_model=Webhook, responses=problems(*AUTHED, 404))
async def update_webhook(
    webhook_id: str, body: WebhookPatch, request: Request, principal: Admin
) -> Any:
    """Change any field; re-enabling resumes delivery from events published after it."""
    services = services_of(request)
    async with services.db.write() as conn:
        before = await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
        spec = _patched(before.spec, body).validated(
            allow_insecure=services.settings.allow_insecure_targets
        )
        record = await store.update_webhook_for_tenant(
            conn, principal.tenant_id, webhook_id, spec, now=utcnow()
        )
    services.wakeups.webhook_changed(webhook_id)
    return webhook_json(record)


@router.delete("/{webhook_id}", status_code=204, responses=problems(*AUTHED, 404))
async def delete_webhook(webhook_id: str, request: Request, principal: Admin) -> Response:
    """Delete; pending packages are dropped, history is kept."""
    services = services_of(request)
    async with services.db.write() as conn:
        await store.delete_webhook_for_tenant(conn, principal.tenant_id, webhook_id, now=utcnow())
    services.wakeups.webhook_changed(webhook_id)
    return Response(status_code=204)


async def _test(webhook_id: str, request: Request, principal: Principal, wait: bool) -> Any:
    services = services_of(request)
    async with services.db.read() as conn:
        record = await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
    package, body = prepare_test(record)
    sending = asyncio.ensure_future(deliver_test(services, record, package, body))
    if not wait:
        background: set[asyncio.Future[Any]] = request.app.state.background
        background.add(sending)
        sending.add_done_callback(background.discard)
        queued = TestQueued(url=record.spec.url, package_id=package.id)
        return JSONResponse(queued.model_dump(), status_code=202)
    result = await sending
    outcome: dict[str, Any] = {"url": record.spec.url, "package_id": package.id}
    if result.status is None:
        outcome["error"] = result.error
    else:
        outcome["response"] = {
            "status": result.status, "headers": result.headers, "body": result.excerpt,
        }  # fmt: skip
    return JSONResponse(TestResult.model_validate(outcome).model_dump(exclude_none=True))


_TEST_RESPONSES = {
    200: {"model": TestResult, "description": "Sent; the receiver's answer or the error"},
    202: {"model": TestQueued, "description": "Queued for sending now"},
    **problems(*AUTHED, 404),
}


@router.post("/{webhook_id}/test", status_code=202, responses=_TEST_RESPONSES)
async def test_webhook(
    webhook_id: str,
    request: Request,
    principal: Admin,
    wait: Annotated[bool, Query(description="wait for the answer and return it (200)")] = False,
) -> Any:
    """Send a signed ``WEBHOOK.TEST`` package now, outside the queue."""
    return await _test(webhook_id, request, principal, wait)


@router.get("/{webhook_id}/test", response_model=TestResult, responses=problems(*AUTHED, 404))
async def test_webhook_now(webhook_id: str, request: Request, principal: Admin) -> Any:
    """Send a signed ``WEBHOOK.TEST`` package and return what the endpoint answered."""
    return await _test(webhook_id, request, principal, True)


@router.get("/{webhook_id}/secret", response_model=SecretOut, responses=problems(*AUTHED, 404))
async def get_secret(webhook_id: str, request: Request, principal: Admin) -> Any:
    """The Standard Webhooks secret(s) that sign this webhook's deliveries now."""
    async with services_of(request).db.read() as conn:
        await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
        secrets = (await store.active_secrets(conn, [webhook_id], now=utcnow()))[webhook_id]
    return {"secret": secrets[0], "previous": secrets[1:]}


@router.post(
    "/{webhook_id}/secret/rotate", response_model=SecretOut, responses=problems(*AUTHED, 404)
)
async def rotate_secret(webhook_id: str, request: Request, principal: Admin) -> Any:
    """A new secret signs from now on; the old one keeps signing during the overlap (24 h)."""
    services = services_of(request)
    now = utcnow()
    async with services.db.write() as conn:
        await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
        await store.rotate_secret(
            conn, webhook_id, now=now, overlap=services.settings.secret_rotation_overlap
        )
        secrets = (await store.active_secrets(conn, [webhook_id], now=now))[webhook_id]
    services.wakeups.webhook_changed(webhook_id)
    return {"secret": secrets[0], "previous": secrets[1:]}


@router.get("/{webhook_id}/packages", response_model=PackageList, responses=problems(*AUTHED, 404))
async def list_packages(
    webhook_id: str,
    request: Request,
    principal: Reader,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Packages sent or pending, newest first."""
    async with services_of(request).db.read() as conn:
        await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
        rows, total = await deliveries.list_packages_for_tenant(
            conn, principal.tenant_id, webhook_id, offset=offset, limit=limit
        )
    data = [_package_json(p) for p in rows]
    meta = {"offset": offset, "limit": limit, "count": len(data), "total_count": total}
    return {"meta": meta, "data": data}


def _package_json(package: deliveries.Package) -> dict[str, Any]:
    fields = dataclasses.asdict(package)
    fields["event_count"] = len(package.event_ids)
    return fields


@router.get("/{webhook_id}/attempts", response_model=AttemptList, responses=problems(*AUTHED, 404))
async def list_attempts(
    webhook_id: str,
    request: Request,
    principal: Reader,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Attempts, newest first."""
    async with services_of(request).db.read() as conn:
        await store.get_webhook_for_tenant(conn, principal.tenant_id, webhook_id)
        rows, total = await deliveries.list_attempts_for_tenant(
            conn, principal.tenant_id, webhook_id, offset=offset, limit=limit
        )
    meta = {"offset": offset, "limit": limit, "count": len(rows), "total_count": total}
    return {"meta": meta, "data": rows}
