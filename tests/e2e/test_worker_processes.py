"""``hookline worker --processes N`` as a real process tree on SQLite and PostgreSQL: the
children split the webhooks evenly from the start, deliver in order, a killed child comes
back under its old lease owner (its webhooks resume at once, not after the leases expire),
and SIGTERM stops them all and gives every lease back."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import typer
from sqlalchemy import select

from hookline.store.db import Database
from hookline.store.tables import webhook_state
from hookline.supervisor import process_count
from tests.conftest import SettingsFor
from tests.support import processes
from tests.support.hookline import Hookline
from tests.support.processes import Served
from tests.support.receiver import Receiver

pytestmark = pytest.mark.slow
RUNNING = re.compile(r"Hookline worker running \(2 processes\)")
METRICS = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")
RESTARTED = re.compile(r".*worker process died; restarting it")
WEBHOOKS = 6
EVENTS = 12


def _env(database_url: str, secret_key: str) -> dict[str, str]:
    return {
        "HOOKLINE_DATABASE_URL": database_url,
        "HOOKLINE_SECRET_KEY": secret_key,
        "HOOKLINE_ALLOW_INSECURE_TARGETS": "true",
        "HOOKLINE_REQUEST_TIMEOUT": "3s",
        "HOOKLINE_LEASE_DURATION": "60s",  # the default: a restart must not wait for it
        "NO_COLOR": "1",
    }


async def _leases(database_url: str) -> Counter[str | None]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(webhook_state.c.lease_owner))
            return Counter(row.lease_owner for row in rows)
    finally:
        await db.engine.dispose()


async def test_processes_share_deliver_restart_and_stop(
    settings_for: SettingsFor, database_url: str, receiver: Receiver
) -> None:
    settings = settings_for()
    api = await Hookline(settings).start(worker=False)
    tree = None
    try:
        tenant = await api.tenant("acme")
        paths = [f"/hook/{n}" for n in range(WEBHOOKS)]
        for path in paths:
            await tenant.create_webhook(receiver.url(path), config={"delay": "1s"})
        env = _env(database_url, str(settings.secret_key))
        tree = Served(processes.start(["worker", "--processes", "2"], env))
        tree.until(RUNNING)

        # Each child counted its sibling when it took its share: three and three, not all
        # six to whichever registered first.
        owners = await _leases(database_url)
        assert sorted(owners.values()) == [WEBHOOKS // 2, WEBHOOKS // 2], owners
        assert sorted(o.rsplit("/", 1)[1] for o in owners if o) == ["0", "1"]

        published = await tenant.publish(*({"type": "ORDER.FILLED", "object": {"n": n}}
                                           for n in range(EVENTS)))  # fmt: skip
        await receiver.wait_for(
            lambda: all(len(receiver.acked[p]) == EVENTS for p in paths),
            timeout=30, what="every event at every webhook",
        )  # fmt: skip

        # SIGKILL one child: the parent starts another under the same lease owner, which
        # renews what the dead one held at once (the leases would last 60 s otherwise).
        children = processes.children_of(tree.process.pid)
        assert len(children) == 2, children
        victim = children[0]
        os.kill(victim, signal.SIGKILL)
        tree.until(RESTARTED, timeout=10)
        published += await tenant.publish(*({"type": "ORDER.FILLED", "object": {"n": n}}
                                            for n in range(EVENTS, 2 * EVENTS)))  # fmt: skip
        await receiver.wait_for(
            lambda: all(len(receiver.acked[p]) == 2 * EVENTS for p in paths),
            timeout=20, what="every event after the restart, well before the leases expire",
        )  # fmt: skip
        # In order, each package once; the only ones sent twice are those the killed child
        # had sent but not yet recorded (at most one per webhook).
        for path in paths:
            ids, twice = receiver.once_each(path)
            assert ids == [e["id"] for e in published] and twice <= 1, path
        replacements = processes.children_of(tree.process.pid)
        assert len(replacements) == 2 and victim not in replacements
        assert sorted((await _leases(database_url)).values()) == [WEBHOOKS // 2, WEBHOOKS // 2]

        tree.process.send_signal(signal.SIGTERM)
        assert tree.process.wait(timeout=30) == 0
        assert not any(processes.running(pid) for pid in replacements)  # the parent waited for them
        assert await _leases(database_url) == Counter({None: WEBHOOKS})
    finally:
        if tree is not None and tree.process.poll() is None:
            tree.process.kill()
            tree.process.wait()
        await api.stop()


async def test_children_stop_when_the_parent_is_killed(
    settings_for: SettingsFor, receiver: Receiver, tmp_path: Path
) -> None:
    """SIGKILL gives the parent no chance to stop its children: they notice it is gone, stop
    as on SIGTERM and give their leases back, instead of delivering on unsupervised."""
    settings = settings_for(database_url=f"sqlite:///{tmp_path / 'orphans.db'}")
    api = await Hookline(settings).start(worker=False)
    tree = None
    try:
        tenant = await api.tenant("acme")
        for n in range(4):
            await tenant.create_webhook(receiver.url(f"/hook/{n}"))
        env = _env(settings.database_url, str(settings.secret_key))
        tree = Served(processes.start(["worker", "--processes", "2"], env))
        tree.until(RUNNING)
        children = processes.children_of(tree.process.pid)
        assert len(children) == 2 and sum((await _leases(settings.database_url)).values()) == 4
        tree.process.kill()
        tree.process.wait()
        deadline = time.monotonic() + 30
        while any(processes.running(pid) for pid in children):
            assert time.monotonic() < deadline, "the children outlived their parent"
            await asyncio.sleep(0.1)
        assert await _leases(settings.database_url) == Counter({None: 4})
    finally:
        if tree is not None and tree.process.poll() is None:
            tree.process.kill()
            tree.process.wait()
        await api.stop()


def _port_pair() -> tuple[int, socket.socket]:
    """A port P whose successor P + 1 is held by the returned socket."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port + 1))
        except OSError:
            holder.close()
            continue
        holder.listen()
        return port, holder


def test_a_child_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    """Process 1's metrics port is taken: it can never start, so the parent stops process 0
    too and exits non-zero with one line that says which, instead of restarting forever."""
    port, holder = _port_pair()
    try:
        env = _env(f"sqlite:///{tmp_path / 'h.db'}", "test-secret-key-0123456789")
        done = subprocess.run(
            processes.hookline_command("worker", "--processes", "2", "--metrics-port", str(port)),
            env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        holder.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: worker process 1 exited before it was ready" in done.stderr
    assert "worker running" not in done.stdout


def test_metrics_port_zero_lets_each_process_pick_one(tmp_path: Path) -> None:
    """``--metrics-port 0`` is any free port for each child, not 0 + i (port 1 for the second)."""
    env = _env(f"sqlite:///{tmp_path / 'h.db'}", "test-secret-key-0123456789")
    tree = Served(processes.start(["worker", "--processes", "2", "--metrics-port", "0"], env))
    try:
        tree.until(RUNNING)
        ports = {int(m.group(1)) for line in tree.seen if (m := METRICS.match(line))}
        assert len(ports) == 2 and 0 not in ports and 1 not in ports, tree.seen
        for port in ports:  # each serves its own metrics
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as got:
                assert b"hookline_worker_webhooks" in got.read()
        tree.process.send_signal(signal.SIGTERM)
        assert tree.process.wait(timeout=30) == 0
    finally:
        if tree.process.poll() is None:
            tree.process.kill()
            tree.process.wait()


@pytest.mark.parametrize("command", ["worker", "api"])
@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_process_counts_are_one_line(tmp_path: Path, command: str, value: str) -> None:
    env = _env(f"sqlite:///{tmp_path / 'h.db'}", "test-secret-key-0123456789")
    done = subprocess.run(
        processes.hookline_command(command, "--processes", value),
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for '--processes'")
    assert not (tmp_path / "h.db").exists()  # nothing started


def test_process_count() -> None:
    assert process_count("3") == process_count(3) == 3
    assert process_count(" AUTO ") >= 1
    for bad in ("0", "x", "1.5"):
        with pytest.raises(typer.BadParameter):
            process_count(bad)
