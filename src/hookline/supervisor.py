"""``hookline worker --processes N`` and ``hookline api --processes N``: N processes of one
kind under one parent.

One worker, or one API server, is one event loop on one core. The parent migrates once,
starts the children, says they are running when every child is ready, forwards stop signals,
and restarts a child that dies.

Workers share the webhooks through their leases (on PostgreSQL or one SQLite file). Each child
keeps the lease owner of its slot across restarts, so its replacement renews the leases it
left at once instead of waiting for them to expire; and each counts its siblings when taking
its share (``Worker.peers``), so they split the webhooks evenly from the start.

API servers share one port: each child listens on it with ``SO_REUSEPORT`` and the kernel
hands each new connection to one of them (by a hash of its addresses, so the connections, not
the requests, are spread). The parent holds the port bound meanwhile, so no other program
takes it while a child restarts; the children's metrics are summed across them (Prometheus'
multiprocess mode), so a scrape of any counts the events all of them published.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

import structlog
import typer

from hookline.metrics import MULTIPROC_DIR
from hookline.store.migrate import migrate

log = structlog.get_logger("hookline.supervisor")

SPAWN = multiprocessing.get_context("spawn")  # nothing of the parent's state is inherited
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # after 1, 2, ... deaths in a row
STEADY_SECONDS = 60.0  # a child that ran this long before dying restarts after the first delay
STOP_WAIT_SECONDS = 60.0  # after a stop signal, how long children may take before being killed
TICK_SECONDS = 0.2


def process_count(value: str | int) -> int:
    """``--processes``: a count of at least 1, or ``auto`` (the CPUs this process may use).
    (The option's default reaches here as the number itself.)"""
    value = str(value)
    if value.strip().lower() == "auto":
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # no affinity on this platform (macOS)
            return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a number nor 'auto'") from None
    if count < 1:
        raise typer.BadParameter("must be at least 1")
    return count


@dataclass
class _Slot:
    """One child's place: a worker's lease owner survives the process that holds it."""

    index: int
    owner: str = ""  # a worker's; an API server has none
    process: BaseProcess | None = None
    ready: Event | None = None
    was_ready: bool = False
    started_at: float = 0.0
    deaths: int = 0  # in a row, each after less than STEADY_SECONDS
    restart_at: float | None = None
    ever_ready: bool = False  # some process of this slot came up once
    signalled: bool = False  # told to stop


def _child_life(life: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A child's whole life, ``life()`` run as the command runs it.

    Ctrl-C reaches the whole process group; the parent turns it into SIGTERM for each child.
    Until the child listens for it, it must not kill a child half-started. A child that
    fails says so in one line, as the command would, and exits with its code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_with_parent()
    from hookline.cli.base import run
    from hookline.logs import configure_logging

    configure_logging()
    try:
        run(life())
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None


def _worker_child(
    owner: str, peers: int, host: str, metrics_port: int | None, ready: Event
) -> None:
    """One worker, as ``hookline worker`` runs it."""
    from hookline import server
    from hookline.cli.base import load_settings

    _child_life(lambda: server.run(load_settings(), host=host, api=False,
                                   metrics_port=metrics_port, owner=owner, peers=peers,
                                   ready=ready.set))  # fmt: skip


def _api_child(host: str, port: int, ready: Event) -> None:
    """``hookline api`` on a listening socket of its own on the port the parent holds."""
    from hookline import server
    from hookline.cli.base import load_settings

    _child_life(lambda: server.run(load_settings(), host=host, port=port, worker=False,
                                   shared_port=True, ready=ready.set))  # fmt: skip


def _stop_with_parent() -> None:
    """Stop (SIGTERM to ourselves: in-flight attempts finish, leases are released) if the
    parent dies without stopping us (SIGKILL, the OOM killer): a worker nobody supervises
    would otherwise go on delivering, and a restarted parent start a second one beside it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Supervisor:
    """Children of one kind (see the subclasses), started, watched, restarted and stopped."""

    kind = "process"  # as messages name a child

    def __init__(self, count: int) -> None:
        self.count = count
        self.slots = [_Slot(index) for index in range(count)]
        self.stopping: float | None = None  # when the stop signal came
        self.exit_code = 0

    def run(self, database_url: str) -> int:
        migrate(database_url)  # once, before the children (each would race the others)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            for slot in self.slots:
                self._start(slot)
            self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _process(self, slot: _Slot, ready: Event) -> BaseProcess:
        """The (not yet started) process for ``slot``, which sets ``ready`` once it is."""
        raise NotImplementedError

    def _running_line(self) -> str:
        """Printed once every child is ready."""
        raise NotImplementedError

    def _died(self, pid: int) -> None:
        """A child ended (any way)."""

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only noted here: the loop passes it on (a handler may run mid-way through starting
        # a child, which must be stopped too).
        self._stop()

    def _stop(self) -> None:
        if self.stopping is None:
            self.stopping = time.monotonic()

    def _pass_stop_on(self, now: float) -> None:
        """SIGTERM each child once (it finishes what is in flight and releases its leases);
        SIGKILL what is left after STOP_WAIT_SECONDS."""
        assert self.stopping is not None
        late = now - self.stopping > STOP_WAIT_SECONDS
        for slot in self.slots:
            slot.restart_at = None
            if slot.process is None or not slot.process.is_alive():
                continue
            if late:
                slot.process.kill()
            elif not slot.signalled:
                slot.signalled = True
                slot.process.terminate()

    def _start(self, slot: _Slot) -> None:
        slot.ready = SPAWN.Event()
        slot.was_ready = slot.signalled = False
        slot.restart_at = None
        slot.started_at = time.monotonic()
        slot.process = self._process(slot, slot.ready)
        slot.process.start()

    def _watch(self) -> None:
        announced = False
        while any(slot.process is not None or slot.restart_at is not None for slot in self.slots):
            running = [slot.process.sentinel for slot in self.slots if slot.process is not None]
            wait(running, timeout=TICK_SECONDS)
            now = time.monotonic()
            for slot in self.slots:
                self._look_at(slot, now)
            if self.stopping is not None:
                self._pass_stop_on(now)
            elif not announced and all(slot.was_ready for slot in self.slots):
                announced = True
                print(self._running_line(), flush=True)

    def _look_at(self, slot: _Slot, now: float) -> None:
        if slot.process is None:
            if slot.restart_at is not None and now >= slot.restart_at and self.stopping is None:
                self._start(slot)
            return
        if slot.ready is not None and slot.ready.is_set():
            slot.was_ready = slot.ever_ready = True
        code = slot.process.exitcode
        if code is None:
            return
        slot.process.join()
        if slot.process.pid is not None:
            self._died(slot.process.pid)
        slot.process = None
        if self.stopping is not None:
            if code != 0:
                self.exit_code = 1
            return
        if not slot.ever_ready:
            # It never came up (a port taken, the database unreachable): restarting would
            # only repeat that, so stop the others and say so. (A replacement that fails to
            # start is retried: what it needs may come back.)
            typer.echo(f"error: {self.kind} process {slot.index} exited before it was ready "
                       f"(exit code {code})", err=True)  # fmt: skip
            self.exit_code = 1
            self._stop()
            return
        slot.deaths = 1 if now - slot.started_at >= STEADY_SECONDS else slot.deaths + 1
        delay = RESTART_DELAYS[min(slot.deaths, len(RESTART_DELAYS)) - 1]
        slot.restart_at = now + delay
        log.warning(f"{self.kind} process died; restarting it", process=slot.index,
                    exit_code=code, restart_in_s=delay)  # fmt: skip


class WorkerSupervisor(Supervisor):
    """``hookline worker --processes N``."""

    kind = "worker"

    def __init__(self, count: int, *, owner: str, host: str, metrics_port: int | None) -> None:
        super().__init__(count)
        self.host, self.metrics_port = host, metrics_port
        for slot in self.slots:
            slot.owner = f"{owner}/{slot.index}"

    def _process(self, slot: _Slot, ready: Event) -> BaseProcess:
        port = self.metrics_port
        if port:  # None: no metrics; 0: each child picks a free port
            port += slot.index
        return SPAWN.Process(
            target=_worker_child, name=f"hookline-worker-{slot.index}",
            args=(slot.owner, self.count, self.host, port, ready),
        )  # fmt: skip

    def _running_line(self) -> str:
        return f"Hookline worker running ({self.count} processes); Ctrl-C to stop"


class ApiSupervisor(Supervisor):
    """``hookline api --processes N``: N API servers on one port.

    The port is bound here (``server.reserve_port``: a port in use is refused, ``0`` picks
    one) and held for as long as the parent runs; each child listens on it with a socket of
    its own. Their metrics go to files in one directory (``PROMETHEUS_MULTIPROC_DIR``, made
    here unless it is set), so any child's ``/metrics`` shows the published events of all."""

    kind = "API"

    def __init__(self, count: int, *, host: str, port: int) -> None:
        super().__init__(count)
        self.host, self.port = host, port
        self._reserved: socket.socket | None = None
        self._metrics_dir: str | None = None

    def reserve(self) -> None:
        """Bind the port (an ``OSError`` if it cannot be had); ``run`` does it if not done."""
        from hookline import server

        if self._reserved is None:
            self._reserved = server.reserve_port(self.host, self.port)
            self.port = self._reserved.getsockname()[1]

    def run(self, database_url: str) -> int:
        self.reserve()
        assert self._reserved is not None
        given = os.environ.get(MULTIPROC_DIR)
        self._metrics_dir = given or tempfile.mkdtemp(prefix="hookline-api-metrics-")
        os.environ[MULTIPROC_DIR] = self._metrics_dir  # the children inherit it
        try:
            return super().run(database_url)
        finally:
            self._reserved.close()
            if not given:
                os.environ.pop(MULTIPROC_DIR, None)
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _process(self, slot: _Slot, ready: Event) -> BaseProcess:
        return SPAWN.Process(
            target=_api_child, name=f"hookline-api-{slot.index}",
            args=(self.host, self.port, ready),
        )  # fmt: skip

    def _running_line(self) -> str:
        from hookline import server

        assert self._reserved is not None
        return f"Hookline listening on {server.url_of(self._reserved)} ({self.count} processes)"

    def _died(self, pid: int) -> None:
        # Its gauges that count only live processes drop it; its counters keep counting.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self._metrics_dir)
