"""Webhook subscriptions, always read and changed through the owning tenant."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.domain.webhooks import WebhookSpec
from hookline.errors import NotFound
from hookline.ids import is_id, new_id
from hookline.signatures.standard import generate_secret
from hookline.store.events import log_head
from hookline.store.tables import packages, webhook_secrets, webhook_state, webhooks

SORTABLE = ("created_at", "updated_at", "title", "url", "enabled")

# Lock order, everywhere a transaction touches one webhook's rows (API and workers alike):
# webhooks -> webhook_state -> packages -> attempts. Taking them in another order deadlocks
# on PostgreSQL against a worker's group commit (which settles webhook_state first and writes
# packages at the end).


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: str
    tenant_id: str
    spec: WebhookSpec
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None


def _record(row: Any) -> WebhookRecord:
    spec = WebhookSpec(
        title=row.title,
        url=row.url,
        types=tuple(row.types),
        exclude_types=tuple(row.exclude_types),
        enabled=row.enabled,
        delay=row.delay,
        max_package_size=row.max_package_size,
    )
    return WebhookRecord(
        row.id, row.tenant_id, spec, row.created_at, row.updated_at, row.disabled_reason
    )


def _spec_values(spec: WebhookSpec) -> dict[str, Any]:
    values = dataclasses.asdict(spec)
    values["types"] = list(spec.types)
    values["exclude_types"] = list(spec.exclude_types)
    return values


async def create_webhook(
    conn: AsyncConnection, tenant_id: str, spec: WebhookSpec, *, now: datetime
) -> WebhookRecord:
    """Store a webhook with its first secret; it receives events published from now on."""
    webhook_id = new_id()
    await conn.execute(
        insert(webhooks).values(
            id=webhook_id, tenant_id=tenant_id, created_at=now, updated_at=now, **_spec_values(spec)
        )
    )
    await conn.execute(
        insert(webhook_state).values(
            webhook_id=webhook_id, tenant_id=tenant_id, cursor_seq=await log_head(conn, tenant_id)
        )
    )
    await conn.execute(
        insert(webhook_secrets).values(
            id=new_id(), webhook_id=webhook_id, secret=generate_secret(), created_at=now
        )
    )
    return WebhookRecord(webhook_id, tenant_id, spec, now, now)


def _live(tenant_id: str) -> Any:
    return (webhooks.c.tenant_id == tenant_id) & webhooks.c.deleted_at.is_(None)


async def get_webhook_for_tenant(
    conn: AsyncConnection, tenant_id: str, webhook_id: str
) -> WebhookRecord:
    """The tenant's webhook, or NotFound (also for another tenant's: never leak existence)."""
    if not is_id(webhook_id):
        raise NotFound(f"no webhook {webhook_id[:64]!r}")
    row = (
        await conn.execute(select(webhooks).where(_live(tenant_id), webhooks.c.id == webhook_id))
    ).first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return _record(row)


async def webhooks_by_id(conn: AsyncConnection, webhook_ids: list[str]) -> list[WebhookRecord]:
    """Live (not deleted) webhooks by id, across tenants: for the delivery workers only."""
    query = select(webhooks).where(webhooks.c.id.in_(webhook_ids), webhooks.c.deleted_at.is_(None))
    return [_record(row) for row in await conn.execute(query)]


async def list_webhooks_for_tenant(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    sort: str = "created_at",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[WebhookRecord], int]:
    """A page of the tenant's webhooks and how many there are in all."""
    column = webhooks.c[sort]
    order = (column.desc(), webhooks.c.id.desc()) if descending else (column, webhooks.c.id)
    query = select(webhooks).where(_live(tenant_id)).order_by(*order).offset(offset).limit(limit)
    total = select(func.count()).select_from(webhooks).where(_live(tenant_id))
    rows = (await conn.execute(query)).all()
    return [_record(row) for row in rows], int((await conn.execute(total)).scalar_one())


async def update_webhook_for_tenant(
    conn: AsyncConnection,
    tenant_id: str,
    webhook_id: str,
    spec: WebhookSpec,
    *,
    now: datetime,
) -> WebhookRecord:
    """Replace the spec; re-enabling restarts delivery from the current end of the log."""
    before = await get_webhook_for_tenant(conn, tenant_id, webhook_id)
    values: dict[str, Any] = {**_spec_values(spec), "updated_at": now}
    if spec.enabled:
        values["disabled_reason"] = None
    await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
    if spec.enabled and not before.spec.enabled:
        await _restart_delivery(conn, tenant_id, webhook_id, now=now)
    return dataclasses.replace(before, spec=spec, updated_at=now, disabled_reason=None)


async def _drop_pending(conn: AsyncConnection, webhook_id: str, *, now: datetime) -> None:
    await conn.execute(
        update(packages)
        .where(packages.c.webhook_id == webhook_id, packages.c.status == "pending")
        .values(status="dropped", finished_at=now, next_attempt_at=None)
    )


async def _restart_delivery(
    conn: AsyncConnection, tenant_id: str, webhook_id: str, *, now: datetime
) -> None:
    await conn.execute(
        update(webhook_state)
        .where(webhook_state.c.webhook_id == webhook_id)
        .values(
            cursor_seq=await log_head(conn, tenant_id), open_package_id=None, failing_since=None
        )
    )
    await _drop_pending(conn, webhook_id, now=now)


async def delete_webhook_for_tenant(
    conn: AsyncConnection, tenant_id: str, webhook_id: str, *, now: datetime
) -> None:
    """Soft-delete: pending packages are dropped, history stays for the retention period."""
    await get_webhook_for_tenant(conn, tenant_id, webhook_id)
    await conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(deleted_at=now, updated_at=now, enabled=False)
    )
    await conn.execute(
        update(webhook_state)
        .where(webhook_state.c.webhook_id == webhook_id)
        .values(open_package_id=None)
    )
    await _drop_pending(conn, webhook_id, now=now)


async def disable_webhook(
    conn: AsyncConnection, webhook_id: str, *, reason: str, now: datetime
) -> None:
    """Disabled by the delivery worker (410 Gone, or failing for too long)."""
    await conn.execute(
        update(webhooks)
        .where(webhooks.c.id == webhook_id)
        .values(enabled=False, disabled_reason=reason[:200], updated_at=now)
    )
    await conn.execute(
        update(webhook_state)
        .where(webhook_state.c.webhook_id == webhook_id)
        .values(open_package_id=None)
    )


async def active_secrets(
    conn: AsyncConnection, webhook_ids: list[str], *, now: datetime
) -> Mapping[str, list[str]]:
    """The Standard Webhooks secrets that sign for each webhook now, newest first."""
    query = (
        select(webhook_secrets.c.webhook_id, webhook_secrets.c.secret)
        .where(
            webhook_secrets.c.webhook_id.in_(webhook_ids),
            webhook_secrets.c.expires_at.is_(None) | (webhook_secrets.c.expires_at > now),
        )
        .order_by(webhook_secrets.c.created_at.desc(), webhook_secrets.c.id.desc())
    )
    found: dict[str, list[str]] = {webhook_id: [] for webhook_id in webhook_ids}
    for row in await conn.execute(query):
        found[row.webhook_id].append(row.secret)
    return found


async def rotate_secret(
    conn: AsyncConnection, webhook_id: str, *, now: datetime, overlap: timedelta
) -> str:
    """A new secret signs from now on; the current ones keep signing for ``overlap``."""
    await conn.execute(
        update(webhook_secrets)
        .where(
            webhook_secrets.c.webhook_id == webhook_id,
            webhook_secrets.c.expires_at.is_(None) | (webhook_secrets.c.expires_at > now + overlap),
        )
        .values(expires_at=now + overlap)
    )
    secret = generate_secret()
    await conn.execute(
        insert(webhook_secrets).values(
            id=new_id(), webhook_id=webhook_id, secret=secret, created_at=now
        )
    )
    return secret
