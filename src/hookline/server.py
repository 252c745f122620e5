"""Run the API and/or the delivery worker in this process until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator

import structlog
import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from hookline import metrics
from hookline.api.app import create_app
from hookline.config import Settings
from hookline.delivery.worker import Worker
from hookline.services import Services, open_services
from hookline.store.migrate import migrate

log = structlog.get_logger("hookline.server")
KEY_REFRESH_SECONDS = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Collect the youngest generation every 10,000 net allocations instead of 700: a publish or
# a package allocates thousands of short-lived objects, freed by reference counting anyway.
GC_THRESHOLDS = (10_000, 10, 10)


async def _refresh_keys(services: Services) -> None:
    while True:
        await asyncio.sleep(KEY_REFRESH_SECONDS)
        with contextlib.suppress(Exception):
            await services.refresh_keys()


async def _stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def url_of(listening: socket.socket, scheme: str = "http") -> str:
    host, port = listening.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


LISTEN_BACKLOG = 2048  # uvicorn's default


def _tcp_socket(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)


def _port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` that shares the port with the others of its
    group, listening if asked; closed again if that fails."""
    if sys.platform != "linux" or not hasattr(socket, "SO_REUSEPORT"):
        # Elsewhere SO_REUSEPORT does not spread connections (or does not exist).
        raise OSError("the API's --processes needs Linux (SO_REUSEPORT); run one per port")
    sock = _tcp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """``host:port`` bound, not listening, for ``hookline api --processes`` (port 0 picks
    one): the children listen on it with ``shared_listener``, and the kernel hands each new
    connection to one of them. Refused if anything else is bound there: a port shared by
    mistake with another group would split its connections between the two."""
    if port:
        with _tcp_socket(host) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))  # fails if anything listens there, sharing or not
    return _port_socket(host, port, listen=False)


def shared_listener(host: str, port: int) -> socket.socket:
    """This process's listening socket on the port ``reserve_port`` holds."""
    sock = _port_socket(host, port, listen=True)
    sock.setblocking(False)
    return sock


async def run(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api: bool = True,
    worker: bool = True,
    on_ready: Callable[[Services], Awaitable[None]] | None = None,
    metrics_port: int | None = None,
    owner: str | None = None,
    peers: int = 1,
    ready: Callable[[], None] | None = None,
    shared_port: bool = False,
) -> None:
    """Migrate, then serve until a stop signal; in-flight attempts finish before exit.

    Once running (the API listening; a worker alone, ``api=False``, holding its share) it
    says so, or calls ``ready`` instead: a process of ``--processes``, whose parent speaks
    for all of them. ``owner`` and ``peers`` are the worker's (see ``Worker``);
    ``shared_port``: the API listens on a port its siblings listen on too (``shared_listener``)."""
    await asyncio.to_thread(migrate, settings.database_url)
    services = await open_services(settings)
    if on_ready is not None:
        await on_ready(services)
    delivery = (
        Worker(services.db, settings, wakeups=services.wakeups, sender=services.sender,
               signer=services.signer, owner=owner, peers=peers)
        if worker else None
    )  # fmt: skip
    app = create_app(services) if api else None
    _settle_heap()
    tasks = [asyncio.create_task(_refresh_keys(services))]
    if delivery is not None:
        tasks.append(asyncio.create_task(delivery.run()))
        await delivery.wait_ready()
    try:
        if app is not None:
            sockets = [shared_listener(host, port)] if shared_port else None
            await _serve_api(app, host, port, sockets=sockets, ready=ready)
        else:
            if metrics_port is not None:
                served, _ = start_http_server(metrics_port, addr=host, registry=metrics.REGISTRY)
                bound = served.server_port  # the one picked, if asked for 0
                print(f"metrics on http://{host}:{bound}/metrics", flush=True)
            if ready is None:
                print("Hookline worker running; Ctrl-C to stop", flush=True)
            else:
                ready()
            await _stop_signal()
    finally:
        if delivery is not None:
            await delivery.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await services.close()


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal only stops serving: uvicorn re-raises the signal
    once it is done, which would kill the process before the worker hands its leases back."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)


def _settle_heap() -> None:
    """Once started: freeze what start-up built (modules, the app, settings) out of the cyclic
    garbage collector's sight, and collect the youngest generation less often.

    With the defaults, the collector took about a sixth of the API's time during a publish:
    every 700 allocations it traversed the young objects, and each full collection every
    object the process holds. Reference counting frees nearly all our garbage; the collector
    only has cycles to find, and now finds them among what was made since start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve_api(
    app: FastAPI,
    host: str,
    port: int,
    *,
    sockets: list[socket.socket] | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=sockets))
    # uvicorn offers no started event to await; poll its flag briefly during start-up.
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if server.started:
        if ready is None:
            listening = [s for srv in server.servers for s in srv.sockets]
            print(f"Hookline listening on {url_of(listening[0])}", flush=True)
        else:
            ready()
    await serving
    if not server.started:
        sys.exit(1)
