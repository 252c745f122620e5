"""``hookline listen``: a local receiver for tenants' developers.

It verifies every request with :mod:`hookline.receiver` (Standard Webhooks with ``--secret``,
RFC 9421 with ``--jwks``), de-duplicates events in memory, prints one line per package and
per event (or one JSON object per package with ``--json``) and answers ``204``; a request
that does not verify gets ``400``/``401`` with a one-line reason, and is printed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
import typer

from hookline.cli.base import app, fail, run
from hookline.receiver import (
    Event,
    JWKSClient,
    MemorySeenStore,
    VerificationError,
    WebhookVerifier,
)
from hookline.signatures.standard import decode_secret

MAX_BODY_BYTES = 4 * 1024 * 1024  # packages are at most 1 MiB; leave room


@dataclass
class Listener:
    """Verifies, de-duplicates and reports the requests one ``hookline listen`` receives."""

    verifier: WebhookVerifier
    as_json: bool = False
    store: MemorySeenStore = field(default_factory=MemorySeenStore)

    def handle(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str]:
        """Verify and report one request; returns the status and body to answer with.

        Blocking (a JWKS refetch does network I/O): run it in a thread."""
        try:
            events = self.verifier.verify(headers, body, method=method, url=url)
        except VerificationError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._rejected(method, url, exc.status_code, reason, headers)
            return exc.status_code, reason
        fresh = [not self.store.seen(event.id) for event in events]
        self._accepted(url, headers, events, fresh)
        return 204, ""

    def _accepted(
        self, url: str, headers: dict[str, str], events: list[Event], fresh: list[bool]
    ) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        package_id = lower.get("webhook-id", "?")
        new = sum(fresh)
        duplicate = new == 0 and bool(events)
        if self.as_json:
            _print_json(
                {
                    "status": 204,
                    "package_id": package_id,
                    "timestamp": lower.get("webhook-timestamp"),
                    "url": url,
                    "duplicate": duplicate,
                    "events": [
                        {
                            "id": e.id,
                            "type": e.type,
                            "created_at": e.created_at.isoformat(),
                            "webhook_id": e.webhook_id,
                            "object": e.object,
                            "duplicate": not is_new,
                        }
                        for e, is_new in zip(events, fresh, strict=True)
                    ],
                }
            )
            return
        state = "duplicate package" if duplicate else "package"
        _print(
            f"{_green('204')} {state} {package_id}: {len(events)} event(s), "
            f"{new} new, {len(events) - new} duplicate"
        )
        for event, is_new in zip(events, fresh, strict=True):
            mark = "" if is_new else f" {_dim('(duplicate)')}"
            obj = orjson.dumps(event.object).decode()
            if len(obj) > 200:
                obj = obj[:197] + "..."
            _print(f"  {event.type} {event.id} {event.created_at.isoformat()} {obj}{mark}")

    def _rejected(
        self, method: str, url: str, status: int, reason: str, headers: dict[str, str]
    ) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        if self.as_json:
            _print_json(
                {
                    "status": status,
                    "package_id": lower.get("webhook-id"),
                    "url": url,
                    "method": method,
                    "error": reason,
                }
            )
        else:
            package_id = lower.get("webhook-id", "?")
            _print(f"{_red(str(status))} rejected {method} {url} ({package_id}): {reason}")


def _tty() -> bool:
    return sys.stdout.isatty()


def _green(text: str) -> str:
    return typer.style(text, fg="green", bold=True) if _tty() else text


def _red(text: str) -> str:
    return typer.style(text, fg="red", bold=True) if _tty() else text


def _dim(text: str) -> str:
    return typer.style(text, dim=True) if _tty() else text


def _print(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def _print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


async def _check_jwks(listener: Listener) -> None:
    """Fetch the JWKS once at start so a wrong URL or API key shows up at once."""
    client = listener.verifier.jwks
    if not isinstance(client, JWKSClient):
        return
    try:
        keys = await asyncio.to_thread(client.keys)
    except VerificationError as exc:
        typer.echo(f"warning: {exc}", err=True)
        return
    if not keys:
        typer.echo(f"warning: the JWKS at {client.url} holds no usable key", err=True)


async def _serve(listener: Listener, host: str, port: int) -> None:
    from aiohttp import web  # a server dependency; imported only when listening

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        status, reason = await asyncio.to_thread(
            listener.handle,
            request.method,
            str(request.url),
            dict(request.headers),
            body,
        )
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=reason.replace("\n", " ") + "\n")

    application = web.Application(client_max_size=MAX_BODY_BYTES)
    application.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(application, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        shown = f"[{host}]" if ":" in host else host
        address = f"http://{shown}:{bound}/"
        await _check_jwks(listener)
        if listener.as_json:
            _print_json({"listening": address})
        else:
            _print(f"listening on {address} (Ctrl-C to stop)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


@app.command()
def listen(
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    jwks: Annotated[
        str | None,
        typer.Option(
            help="JWKS URL (https://<hookline>/auth/verify_keys): verify RFC 9421 signatures."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="HOOKLINE_API_KEY",
            help="API key (webhooks:read) sent as a Bearer token to fetch --jwks.",
        ),
    ] = None,
    secret: Annotated[
        list[str],
        typer.Option(help="A whsec_ secret: verify Standard Webhooks signatures. Repeatable."),
    ] = [],  # noqa: B006
    url: Annotated[
        str | None,
        typer.Option(help="The URL registered with Hookline, if not the one requested here."),
    ] = None,
    tolerance: Annotated[int, typer.Option(help="Accepted clock skew in seconds.")] = 300,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line per package.")
    ] = False,
) -> None:
    """Run a local receiver that verifies, de-duplicates and prints deliveries."""
    if not jwks and not secret:
        fail("nothing to verify with: give --secret whsec_... and/or --jwks URL")
    if api_key and not jwks:
        fail("--api-key is only used to fetch --jwks")
    for value in secret:
        try:
            decode_secret(value)
        except ValueError as exc:
            fail(f"--secret: {exc}")
    client = None
    if jwks:
        if not jwks.startswith(("http://", "https://")):
            fail("--jwks must be an http(s) URL")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        client = JWKSClient(jwks, headers=headers)
    verifier = WebhookVerifier(
        secret=list(secret) or None, jwks=client, tolerance=tolerance, url=url
    )
    run(_serve(Listener(verifier, as_json=as_json), host, port))
