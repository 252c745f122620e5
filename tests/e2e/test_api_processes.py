"""``hookline api --processes N`` as a real process tree on SQLite and PostgreSQL: the children
share one port (the kernel spreads connections over them), every publish lands in one dense
log, ``/metrics`` from any child counts the publishes of all, a killed child comes back while
the others go on answering, and SIGTERM stops them all."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.support import processes
from tests.support.processes import Served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads connections on Linux"),
]
LISTENING = re.compile(r"Hookline listening on http://127\.0\.0\.1:(\d+) \(2 processes\)$")
RESTARTED = re.compile(r".*API process died; restarting it")
CONNECTIONS = 16  # all on one of two processes: one time in 2**15
ESTABLISHED, LISTEN = "01", "0A"  # states in /proc/net/tcp
PUBLISHED = re.compile(rb"^hookline_events_published_total (\S+)$", re.MULTILINE)


def _env(database_url: str) -> dict[str, str]:
    return {
        "HOOKLINE_DATABASE_URL": database_url,
        "HOOKLINE_SECRET_KEY": "test-secret-key-0123456789",
        "NO_COLOR": "1",
    }


def _sockets(pid: int, port: int, state: str = ESTABLISHED) -> int:
    """How many TCP sockets on local ``port`` in ``state`` process ``pid`` holds (/proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state and fields[9] in inodes:
                count += 1
    return count


def _call(
    conn: http.client.HTTPConnection, method: str, path: str, key: str, body: object = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"}
    payload = None
    if body is not None:
        payload = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _published(conn: http.client.HTTPConnection, key: str) -> float:
    status, body = _call(conn, "GET", "/metrics", key)
    assert status == 200, body
    found = PUBLISHED.search(body)
    assert found is not None, body
    return float(found.group(1))


def _publish(conn: http.client.HTTPConnection, key: str, first: int, count: int) -> None:
    events = [{"type": "ORDER.FILLED", "object": {"n": n}} for n in range(first, first + count)]
    status, body = _call(conn, "POST", "/events", key, {"events": events})
    assert status == 201, body


def _log(port: int, key: str) -> list[int]:
    """Every event's ``n`` in log order, checking that the sequence numbers are dense."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, body = _call(conn, "GET", "/events?limit=1000", key)
    finally:
        conn.close()
    assert status == 200, body
    data = orjson.loads(body)["data"]
    assert [e["sequence"] for e in data] == list(range(1, len(data) + 1))
    return [e["object"]["n"] for e in data]


def test_processes_share_the_port_count_together_restart_and_stop(database_url: str) -> None:
    env = _env(database_url)
    key = orjson.loads(processes.run_json(["tenants", "create", "acme", "--json"], env))["api_key"]
    tree = Served(processes.start(["api", "--processes", "2", "--port", "0"], env))
    conns: list[http.client.HTTPConnection] = []
    try:
        port = int(tree.until(LISTENING).group(1))
        children = processes.children_of(tree.process.pid)
        assert len(children) == 2, children
        metrics_dir = Path(_environ_of(children[0])["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_dir()

        # Sixteen connections, kept open, each publishing three events: the kernel gave
        # each child some of them, and every event is in the one log, numbered densely.
        for n in range(CONNECTIONS):
            conns.append(http.client.HTTPConnection("127.0.0.1", port, timeout=10))
            _publish(conns[-1], key, 3 * n, 3)
        held = {pid: _sockets(pid, port) for pid in children}
        assert sum(held.values()) == CONNECTIONS and all(held.values()), held
        assert sorted(_log(port, key)) == list(range(3 * CONNECTIONS))

        # Whichever child answers counts every publish: each connection asks its own.
        assert {_published(conn, key) for conn in conns} == {3.0 * CONNECTIONS}

        # SIGKILL one child: the other goes on answering, the parent starts another that
        # takes its share of new connections, and the dead one's publishes still count.
        victim = children[0]
        os.kill(victim, signal.SIGKILL)
        tree.until(RESTARTED, timeout=10)
        for conn in conns:
            conn.close()
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)]
        _publish(conns[0], key, 3 * CONNECTIONS, 3)  # while one child is down
        replacement = _replacement(tree.process.pid, children, port)
        conns += [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                  for _ in range(CONNECTIONS - 1)]  # fmt: skip
        for n, conn in enumerate(conns[1:], start=CONNECTIONS + 1):
            _publish(conn, key, 3 * n, 3)
        assert _sockets(replacement, port) > 0
        assert sorted(_log(port, key)) == list(range(6 * CONNECTIONS))
        assert {_published(conn, key) for conn in conns} == {6.0 * CONNECTIONS}
        replacements = processes.children_of(tree.process.pid)
        assert sorted(replacements) == sorted([children[1], replacement])

        for conn in conns:
            conn.close()
        tree.process.send_signal(signal.SIGTERM)
        assert tree.process.wait(timeout=30) == 0
        assert not any(processes.running(pid) for pid in replacements)
        assert not metrics_dir.exists()  # the parent made it, and removed it
    finally:
        for conn in conns:
            conn.close()
        if tree.process.poll() is None:
            tree.process.kill()
            tree.process.wait()


def _replacement(parent: int, before: list[int], port: int, timeout: float = 20) -> int:
    """The child started in place of a dead one, once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [pid for pid in processes.children_of(parent) if pid not in before]
        if new and _sockets(new[0], port, LISTEN):
            return new[0]
        time.sleep(0.05)
    raise AssertionError("no replacement child listened")


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {name.decode(): value.decode() for name, value in pairs}


@pytest.mark.parametrize("sharing", [False, True], ids=["plain", "reuseport"])
def test_a_port_in_use_is_one_line(tmp_path: Path, sharing: bool) -> None:
    """Refused before anything starts: sharing another server's port would split its
    connections between the two, even (``sharing``) one that lets others listen beside it."""
    with socket.create_server(("127.0.0.1", 0), reuse_port=sharing) as holder:
        port = holder.getsockname()[1]
        done = subprocess.run(
            processes.hookline_command("api", "--processes", "2", "--port", str(port)),
            env={**os.environ, **_env(f"sqlite:///{tmp_path / 'h.db'}")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"], lines
    assert "listening" not in done.stdout
    assert not (tmp_path / "h.db").exists()  # nothing started
