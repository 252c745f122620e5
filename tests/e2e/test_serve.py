"""``hookline serve --dev`` as a real process: start, deliver, stop on SIGTERM, restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import Served

pytestmark = pytest.mark.slow
LISTENING = re.compile(r"^Hookline listening on (http://\S+)$")
DEV_KEY = re.compile(r"^\s+(hk_\S+)$")
STOP_SECONDS = 15.0
DELIVERY_SECONDS = 20.0


def serve(home: Path) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env["NO_COLOR"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "hookline", "serve", "--dev", "--port", "0"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Served(process)


def stop(served: Served) -> int:
    """SIGTERM, and the exit code (it must come within STOP_SECONDS)."""
    served.process.send_signal(signal.SIGTERM)
    return served.process.wait(timeout=STOP_SECONDS)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.changed:  # type: ignore[attr-defined]
            self.server.bodies.append(body)  # type: ignore[attr-defined]
            self.server.changed.notify_all()  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Sink(ThreadingHTTPServer):
    bodies: list[bytes]
    changed: threading.Condition

    def event_ids(self) -> list[str]:
        import json

        return [e["id"] for body in list(self.bodies) for e in json.loads(body)["payload"]]

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(condition, timeout=DELIVERY_SECONDS):
                raise AssertionError(f"timed out waiting for {what}; got {self.event_ids()}")


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink(("127.0.0.1", 0), _Handler)
    server.bodies = []
    server.changed = threading.Condition()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def kill(served: Served) -> None:
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()


def start_and_deliver(home: Path, sink: Sink) -> tuple[str, str, list[str], int]:
    """First start on an empty directory: the dev key, a webhook, two events delivered, then
    SIGTERM. Returns the key, the webhook id, the delivered event ids and the exit code."""
    target = f"http://127.0.0.1:{sink.server_address[1]}/hook"
    first = serve(home)
    try:
        key = first.until(DEV_KEY).group(1)
        base = first.until(LISTENING).group(1)
        assert base.startswith("http://127.0.0.1:")
        assert (home / "hookline.db").exists()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            created = api.post("/webhooks", json={"title": "t", "url": target})
            assert created.status_code == 201, created.text
            published = api.post("/events", json={"events": [
                {"type": "ORDER.NEW", "object": {"n": 1}},
                {"type": "ORDER.FILLED", "object": {"n": 2}},
            ]})  # fmt: skip
            assert published.status_code == 201, published.text
            ids = [e["id"] for e in published.json()["events"]]
            sink.wait_for(lambda: sink.event_ids() == ids, "the first two events")
        code = stop(first)  # within STOP_SECONDS, or TimeoutExpired
        assert code in (0, -signal.SIGTERM), (code, first.seen)
        return key, created.json()["id"], ids, code
    finally:
        kill(first)


def test_serve_keeps_its_state_across_restarts(tmp_path: Path, sink: Sink) -> None:
    key, webhook_id, ids, _ = start_and_deliver(tmp_path, sink)
    second = serve(tmp_path)
    try:
        base = second.until(LISTENING).group(1)
        printed_key = [ln for ln in second.seen if DEV_KEY.match(ln) or "Created tenant" in ln]
        assert printed_key == [], second.seen
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            assert [w["id"] for w in api.get("/webhooks").json()["data"]] == [webhook_id]
            packages = api.get(f"/webhooks/{webhook_id}/packages")
            assert packages.status_code == 200, packages.text
            delivered = [p for p in packages.json()["data"] if p["status"] == "delivered"]
            assert [e for p in reversed(delivered) for e in p["event_ids"]] == ids
            events = api.get("/events").json()
            assert [e["id"] for e in events["data"]] == ids
        stop(second)
    finally:
        kill(second)


def test_sigterm_is_graceful_and_delivery_resumes(tmp_path: Path, sink: Sink) -> None:
    key, _, ids, code = start_and_deliver(tmp_path, sink)
    assert code == 0
    second = serve(tmp_path)
    try:
        base = second.until(LISTENING).group(1)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            more = api.post("/events", json={"type": "ORDER.CANCELLED", "object": {"n": 3}})
            assert more.status_code == 201, more.text
            assert more.json()["sequence"] == 3
            ids.append(more.json()["id"])
            # Per-webhook order: a re-sent old package would arrive before this one.
            sink.wait_for(lambda: ids[-1] in sink.event_ids(), "the event published after restart")
            assert sink.event_ids() == ids
        assert stop(second) == 0
    finally:
        kill(second)
