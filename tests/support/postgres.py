"""Throw-away PostgreSQL databases for tests, cloned from one migrated template per session."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from hookline.store.migrate import migrate

ENV = "HOOKLINE_TEST_POSTGRES_URL"


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(with_database(url, make_url(url).database or "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def admin(url: str, *statements: str) -> None:
    """Run statements on the admin database (from sync code, outside any event loop)."""
    asyncio.run(_admin(url, *statements))


def reachable(url: str) -> str | None:
    """None if the server answers, else why not."""
    try:
        admin(url, "SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def create_template(url: str) -> str:
    name = f"hookline_tpl_{os.getpid()}"
    admin(url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    migrate(with_database(url, name))
    return name


def create_database(url: str, template: str) -> str:
    name = f"hookline_t_{uuid.uuid4().hex[:12]}"
    admin(url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_database(url: str, name: str) -> None:
    admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
