"""Commands that manage data: tenants, keys, webhooks, events. They talk to the database."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from hookline.cli.base import (
    JsonFlag,
    TenantOption,
    emit,
    events_app,
    fail,
    keys_app,
    load_settings,
    run,
    tenants_app,
    webhooks_app,
)
from hookline.config import Settings
from hookline.delivery.testsend import deliver_test, prepare_test
from hookline.domain.events import event_json, parse_new_event
from hookline.domain.webhooks import WebhookSpec
from hookline.ids import utcnow
from hookline.services import Services, open_services
from hookline.store import tenants, webhooks
from hookline.store.events import append_events
from hookline.store.migrate import migrate
from hookline.store.tenants import SCOPES

ADMIN_SCOPES = list(SCOPES)


@asynccontextmanager
async def opened(config: Settings | None = None) -> AsyncIterator[Services]:
    config = config or load_settings()
    migrate(config.database_url)
    services = await open_services(config)
    try:
        yield services
    finally:
        await services.close()


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="A unique name, 1..100 characters.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a tenant and an admin API key (all scopes), printed once."""

    async def go() -> dict[str, str]:
        async with opened() as services, services.db.write() as conn:
            tenant_id = await tenants.create_tenant(conn, name)
            key_id, secret = await tenants.create_key(
                conn, tenant_id, scopes=ADMIN_SCOPES, name="admin"
            )
        return {"tenant_id": tenant_id, "key_id": key_id, "api_key": secret}

    out = run(go())
    emit(as_json, out, lambda: typer.echo(
        f"tenant {name}: {out['tenant_id']}\napi key (shown once): {out['api_key']}"
    ))  # fmt: skip


PublicKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="PEM public key (Ed25519 or P-256): requests with this key must then be signed.",
    ),
]


def _read_public_key(path: Path) -> tuple[str, str]:
    """(PEM, RFC 9421 algorithm) of a public key file, or a one-line error."""
    from hookline.api.request_signing import load_public_key
    from hookline.signatures.keys import algorithm_for_key

    try:
        pem = path.read_text()
        return pem, algorithm_for_key(load_public_key(pem))
    except (OSError, ValueError, UnicodeError) as exc:
        fail(f"cannot use {path} as a public key: {exc}")


@keys_app.command("create")
def keys_create(
    tenant: TenantOption,
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="Repeat; default: all.")] = [],  # noqa: B006
    name: Annotated[str, typer.Option(help="A label for the key.")] = "default",
    public_key: PublicKeyFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key for a tenant; the key is printed once."""
    signer = _read_public_key(public_key) if public_key else None

    async def go() -> dict[str, Any]:
        async with opened() as services, services.db.write() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant)
            scopes = scope or ADMIN_SCOPES
            key_id, secret = await tenants.create_key(conn, tenant_id, scopes=scopes, name=name)
            if signer is not None:
                await tenants.set_public_key(conn, key_id, public_key=signer[0], alg=signer[1])
        return {
            "tenant_id": tenant_id,
            "key_id": key_id,
            "api_key": secret,
            "scopes": sorted(scopes),
            "signed_requests": signer[1] if signer else None,
        }

    out = run(go())
    emit(as_json, out, lambda: typer.echo(f"key {out['key_id']} (shown once): {out['api_key']}"))


@keys_app.command("revoke")
def keys_revoke(key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke an API key (takes effect within seconds on running servers)."""

    async def go() -> None:
        async with opened() as services, services.db.write() as conn:
            await tenants.revoke_key(conn, key_id)

    run(go())
    emit(as_json, {"key_id": key_id, "revoked": True}, lambda: typer.echo(f"revoked {key_id}"))


@keys_app.command("set-public-key")
def keys_set_public_key(
    key_id: str,
    path: Annotated[Path | None, typer.Argument(help="PEM public key file.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Stop requiring signatures.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register the public key that must sign this API key's requests (RFC 9421)."""
    if (path is None) == (not remove):
        fail("give a PEM file, or --remove")
    signer = _read_public_key(path) if path else None

    async def go() -> None:
        async with opened() as services, services.db.write() as conn:
            await tenants.set_public_key(
                conn, key_id, public_key=signer[0] if signer else None,
                alg=signer[1] if signer else "",
            )  # fmt: skip

    run(go())
    out = {"key_id": key_id, "signed_requests": signer[1] if signer else None}
    emit(as_json, out, lambda: typer.echo(
        f"{key_id}: requests must be signed ({out['signed_requests']})" if signer
        else f"{key_id}: signatures no longer required"
    ))  # fmt: skip


@keys_app.command("list")
def keys_list(tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """A tenant's API keys: scopes, last use, revocation (never the secrets)."""

    async def go() -> list[dict[str, Any]]:
        async with opened() as services, services.db.read() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant)
            return await tenants.list_keys(conn, tenant_id)

    found = run(go())
    lines = [
        f"{k['key_id']}  {k['prefix']}...  {','.join(k['scopes'])}  last used "
        f"{k['last_used_at'] or 'never'}{'  REVOKED' if k['revoked_at'] else ''}"
        for k in found
    ]
    emit(as_json, {"data": found}, lambda: typer.echo("\n".join(lines) or "no keys"))


@keys_app.command("rotate-signing")
def keys_rotate_signing(as_json: JsonFlag = False) -> None:
    """Make a new signing key current; previous keys stay published for the overlap."""

    async def go() -> dict[str, Any]:
        async with opened() as services:
            key = await services.keyring.rotate()
            published = await services.keyring.load()
        return {"kid": key.kid, "alg": key.alg, "published": [k.kid for k in published]}

    out = run(go())
    emit(as_json, out, lambda: typer.echo(f"signing with {out['kid']} ({out['alg']})"))


@webhooks_app.command("list")
def webhooks_list(tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """List a tenant's webhooks."""
    from hookline.api.webhooks import webhook_json

    async def go() -> list[dict[str, Any]]:
        async with opened() as services, services.db.read() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant)
            records, _ = await webhooks.list_webhooks_for_tenant(conn, tenant_id, limit=1000)
        return [webhook_json(r) for r in records]

    found = run(go())
    lines = [
        f"{w['id']}  {'on ' if w['enabled'] else 'off'}  {w['url']}  {w['title']}" for w in found
    ]
    emit(as_json, {"data": found}, lambda: typer.echo("\n".join(lines) or "no webhooks"))


@webhooks_app.command("create")
def webhooks_create(
    tenant: TenantOption,
    url: Annotated[str, typer.Option(help="The endpoint (https; http/local with --dev servers).")],
    title: Annotated[str, typer.Option()] = "webhook",
    type: Annotated[list[str], typer.Option("--type", help="Category; repeat. Default ALL.")] = [],  # noqa: B006
    exclude: Annotated[list[str], typer.Option("--exclude", help="Category to skip.")] = [],  # noqa: B006
    delay: Annotated[str, typer.Option(help="Longest batching wait, e.g. 1s, 5m.")] = "1s",
    max_package_size: Annotated[int, typer.Option(help="Bytes, 100..1048576.")] = 10240,
    as_json: JsonFlag = False,
) -> None:
    """Create a webhook for a tenant."""
    from hookline.api.webhooks import webhook_json

    config = load_settings()
    spec = WebhookSpec(
        title=title, url=url, types=tuple(type or ["ALL"]), exclude_types=tuple(exclude),
        delay=delay, max_package_size=max_package_size,
    )  # fmt: skip

    async def go() -> dict[str, Any]:
        checked = spec.validated(allow_insecure=config.allow_insecure_targets)
        async with opened(config) as services, services.db.write() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant)
            record = await webhooks.create_webhook(conn, tenant_id, checked, now=utcnow())
        return webhook_json(record)

    out = run(go())
    emit(as_json, out, lambda: typer.echo(f"webhook {out['id']} -> {out['url']}"))


@webhooks_app.command("test")
def webhooks_test(webhook_id: str, tenant: TenantOption, as_json: JsonFlag = False) -> None:
    """Send a signed WEBHOOK.TEST package now and show the answer."""

    async def go() -> dict[str, Any]:
        async with opened() as services:
            async with services.db.read() as conn:
                tenant_id = await tenants.find_tenant(conn, tenant)
                record = await webhooks.get_webhook_for_tenant(conn, tenant_id, webhook_id)
            package, body = prepare_test(record)
            result = await deliver_test(services, record, package, body)
        return {"url": record.spec.url, "package_id": package.id, "status": result.status,
                "error": result.error, "body": result.excerpt}  # fmt: skip

    out = run(go())
    emit(as_json, out, lambda: typer.echo(
        f"{out['url']}: {out['status'] if out['status'] is not None else out['error']}"
    ))  # fmt: skip
    if out["status"] is None or not 200 <= out["status"] < 300:
        raise typer.Exit(1)


@events_app.command("publish")
def events_publish(
    tenant: TenantOption,
    source: Annotated[
        str,
        typer.Argument(help='A JSON file: one event, a list, or {"events": [...]}; - for stdin.'),
    ] = "-",
    as_json: JsonFlag = False,
) -> None:
    """Publish events from a file or stdin, in one transaction."""
    config = load_settings()
    raw = _read_json(source)
    items = raw["events"] if isinstance(raw, dict) and "events" in raw else raw
    items = items if isinstance(items, list) else [items]

    async def go() -> list[dict[str, Any]]:
        now = utcnow()
        batch = [
            parse_new_event(item, open_catalog=config.open_catalog, max_object_bytes=262_144,
                            now=now, where=f"[{i}].")
            for i, item in enumerate(items)
        ]  # fmt: skip
        async with opened(config) as services, services.db.write() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant)
            result = await append_events(conn, tenant_id, batch, now=now)
        return [orjson.loads(orjson.dumps(event_json(e))) for e in result.events]

    stored = run(go())
    lines = [f"#{e['sequence']} {e['type']} {e['id']}" for e in stored]
    emit(as_json, {"events": stored}, lambda: typer.echo("\n".join(lines)))


def _read_json(source: str) -> Any:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        fail(f"{source} is not valid JSON: {exc}")
