"""The typer apps and the helpers every command uses."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from pydantic import ValidationError

from hookline.config import Settings
from hookline.errors import HooklineError

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
try:
    import uvloop

    NEW_LOOP: LoopFactory | None = uvloop.new_event_loop
except ImportError:  # not built for this platform (Windows): asyncio's own loop
    NEW_LOOP = None

T = TypeVar("T")
app = typer.Typer(
    name="hookline",
    help="Self-hosted webhook delivery: ordered, batched, signed, retried until acknowledged.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
tenants_app = typer.Typer(help="Tenants: the platform's clients.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and the deployment's signing keys.", no_args_is_help=True)
webhooks_app = typer.Typer(help="A tenant's webhook subscriptions.", no_args_is_help=True)
events_app = typer.Typer(help="The event log.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(events_app, name="events")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name or id.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a one-line error naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "HOOKLINE_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        fail(f"{name}: {first['msg']}")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line and exit code 1.

    On uvloop where it is installed: a worker draining one webhook on PostgreSQL then spent
    5% less CPU per event and delivered 5% more (medians of eight alternated pairs, see
    docs/benchmarks.md); the API and SQLite ran the same as on asyncio's loop."""
    try:
        with asyncio.Runner(loop_factory=NEW_LOOP) as runner:
            return runner.run(coroutine)
    except HooklineError as exc:
        fail(f"{exc.field}: {exc.detail}" if exc.field else exc.detail)
    except OSError as exc:
        fail(str(exc))


def emit(as_json: bool, data: dict[str, Any], human: Callable[[], None]) -> None:
    """Print ``data`` as one JSON object, or call ``human`` to print it for people."""
    if as_json:
        sys.stdout.write(orjson.dumps(data, default=str).decode() + "\n")
    else:
        human()
