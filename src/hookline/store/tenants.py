"""Tenants and their API keys (stored as SHA-256 of a high-entropy secret), and the public
keys that make a key require signed requests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline.errors import Conflict, NotFound, ValidationFailed
from hookline.ids import new_id, utcnow
from hookline.store.tables import api_key_public_keys, api_keys, tenants

SCOPES = ("webhooks:read", "webhooks:admin", "events:publish", "events:read")
KEY_PREFIX = "hk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant, through one of its keys, with these scopes."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    #: PEM of the public key requests must be signed with (RFC 9421), if one is registered.
    public_key: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationFailed(f"unknown scope(s) {', '.join(unknown)}", field="scopes")
    if not scopes:
        raise ValidationFailed("give at least one scope", field="scopes")
    return sorted(set(scopes))


async def create_tenant(conn: AsyncConnection, name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed("tenant name must be 1..100 characters", field="name")
    tenant_id = new_id()
    try:
        await conn.execute(
            insert(tenants).values(id=tenant_id, name=name, created_at=utcnow(), last_seq=0)
        )
    except IntegrityError:
        raise Conflict(f"a tenant named {name!r} exists already", field="name") from None
    return tenant_id


async def find_tenant(conn: AsyncConnection, id_or_name: str) -> str:
    """A tenant's id from its id or its name."""
    query = select(tenants.c.id).where(
        (tenants.c.id == id_or_name) | (tenants.c.name == id_or_name)
    )
    tenant_id = (await conn.execute(query)).scalar()
    if tenant_id is None:
        raise NotFound(f"no tenant {id_or_name!r}")
    return str(tenant_id)


async def count_tenants(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(tenants.c.id).limit(2))).all())


async def create_key(
    conn: AsyncConnection, tenant_id: str, *, scopes: list[str], name: str = "default"
) -> tuple[str, str]:
    """Create a key; returns (key id, secret). The secret is not stored and not shown again."""
    scopes = check_scopes(scopes)
    key_id = new_id()
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            prefix=prefix,
            key_hash=_hash(secret),
            scopes=scopes,
            created_at=utcnow(),
        )
    )
    return key_id, secret


async def revoke_key(conn: AsyncConnection, key_id: str) -> None:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound(f"no active API key {key_id!r}")


async def authenticate(conn: AsyncConnection, secret: str) -> Principal | None:
    """The principal for a presented key, or None if it is unknown, wrong or revoked."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != KEY_PREFIX:
        return None
    columns = (api_keys.c.id, api_keys.c.tenant_id, api_keys.c.key_hash, api_keys.c.scopes)
    query = (
        select(*columns, api_key_public_keys.c.public_key)
        .select_from(api_keys.outerjoin(api_key_public_keys))
        .where(api_keys.c.prefix == parts[1], api_keys.c.revoked_at.is_(None))
    )
    row = (await conn.execute(query)).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(secret)):
        return None
    return Principal(
        tenant_id=row.tenant_id, key_id=row.id, scopes=frozenset(row.scopes),
        public_key=row.public_key,
    )  # fmt: skip


async def set_public_key(
    conn: AsyncConnection, key_id: str, *, public_key: str | None, alg: str = ""
) -> None:
    """Register (or with None, remove) the public key that must sign the key's requests."""
    found = (
        await conn.execute(
            select(api_keys.c.id).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        )
    ).first()
    if found is None:
        raise NotFound(f"no active API key {key_id!r}")
    await conn.execute(delete(api_key_public_keys).where(api_key_public_keys.c.key_id == key_id))
    if public_key is not None:
        await conn.execute(
            insert(api_key_public_keys).values(
                key_id=key_id, alg=alg, public_key=public_key, created_at=utcnow()
            )
        )


async def list_keys(conn: AsyncConnection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's keys without their secrets: scopes, last use, revocation, signing."""
    query = (
        select(
            api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.scopes,
            api_keys.c.created_at, api_keys.c.last_used_at, api_keys.c.revoked_at,
            api_key_public_keys.c.alg,
        )
        .select_from(api_keys.outerjoin(api_key_public_keys))
        .where(api_keys.c.tenant_id == tenant_id)
        .order_by(api_keys.c.created_at)
    )  # fmt: skip
    rows = (await conn.execute(query)).all()
    return [
        {
            "key_id": r.id,
            "name": r.name,
            "prefix": f"{KEY_PREFIX}{r.prefix}_",
            "scopes": list(r.scopes),
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
            "revoked_at": r.revoked_at,
            "signed_requests": r.alg,
        }
        for r in rows
    ]


async def touch_keys(conn: AsyncConnection, used: dict[str, datetime]) -> None:
    """Record last-used times (batched by the caller, not one write per request)."""
    for key_id, moment in used.items():
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=moment)
        )
