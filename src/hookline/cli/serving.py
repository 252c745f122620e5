"""Commands that run Hookline: serve, api, worker, migrate."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

from hookline import server
from hookline.cli.base import app, fail, load_settings, run
from hookline.delivery.worker import worker_name
from hookline.services import Services
from hookline.store import tenants
from hookline.store.migrate import migrate as migrate_schema
from hookline.supervisor import ApiSupervisor, Supervisor, WorkerSupervisor, process_count

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")]
DEV_SCOPES = ["webhooks:read", "webhooks:admin", "events:publish", "events:read"]


async def _dev_tenant(services: Services) -> None:
    """On an empty database in --dev mode: create a tenant and print its key once."""
    async with services.db.write() as conn:
        if await tenants.count_tenants(conn):
            return
        tenant_id = await tenants.create_tenant(conn, "dev")
        _, secret = await tenants.create_key(conn, tenant_id, scopes=DEV_SCOPES, name="dev")
    print(f"Created tenant 'dev' ({tenant_id}). Its API key, shown once:\n  {secret}", flush=True)


@app.command()
def serve(
    dev: Annotated[
        bool, typer.Option(help="Allow http/local targets; create a tenant on an empty database.")
    ] = False,
    host: Host = "127.0.0.1",
    port: Port = 8080,
) -> None:
    """Run the API and the delivery worker in one process."""
    config = load_settings(allow_insecure_targets=True) if dev else load_settings()
    hook = _dev_tenant if dev else None
    run(server.run(config, host=host, port=port, on_ready=hook))


def _processes(envvar: str, help: str) -> Any:
    return typer.Option(parser=process_count, metavar="N|auto", envvar=envvar, help=help)


def _supervise(supervisor: Supervisor, database_url: str) -> NoReturn:
    try:
        code = supervisor.run(database_url)
    except Exception as exc:  # the migration: alembic and drivers raise many kinds
        fail(f"migration failed: {exc}")
    raise typer.Exit(code)


@app.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8080,
    processes: Annotated[
        int,
        _processes(
            "HOOKLINE_API_PROCESSES",
            "API processes to run on the port: a number, or 'auto' for one per CPU (Linux: "
            "the kernel spreads new connections over them).",
        ),
    ] = 1,
) -> None:
    """Run only the API (run workers with `hookline worker`)."""
    config = load_settings()
    if processes == 1:
        run(server.run(config, host=host, port=port, worker=False))
        return
    supervisor = ApiSupervisor(processes, host=host, port=port)
    try:
        supervisor.reserve()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    _supervise(supervisor, config.database_url)


@app.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (off if unset).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
    processes: Annotated[
        int,
        _processes(
            "HOOKLINE_WORKER_PROCESSES",
            "Worker processes to run, sharing the webhooks: a number, or 'auto' for one "
            "per CPU. Process i serves metrics on --metrics-port + i.",
        ),
    ] = 1,
) -> None:
    """Run only a delivery worker (or several, one per process)."""
    config = load_settings()
    if processes == 1:
        run(server.run(config, host=host, api=False, metrics_port=metrics_port))
        return
    supervisor = WorkerSupervisor(
        processes, owner=worker_name(), host=host, metrics_port=metrics_port
    )
    _supervise(supervisor, config.database_url)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (also done on every start)."""
    config = load_settings()
    try:
        migrate_schema(config.database_url)
    except Exception as exc:  # alembic and drivers raise many kinds; report one line
        fail(f"migration failed: {exc}")
    typer.echo("schema is up to date")
