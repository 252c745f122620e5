"""`hookline listen` as a real process: verifies, de-duplicates and prints deliveries."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from hookline.signatures import generate_secret, generate_signing_key, jwks, sign_package
from hookline.signatures.keys import SigningKey

pytestmark = pytest.mark.slow

WAIT = 20.0  # generous bound for any single expected line; never a timing assertion


class Listen:
    """A running ``hookline listen`` with its stdout read line by line in a thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
        env.pop("HOOKLINE_API_KEY", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hookline", "listen", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, predicate: Any = lambda _line: True) -> str:
        """The next stdout line satisfying ``predicate`` (fails after ``WAIT`` seconds)."""
        deadline = time.monotonic() + WAIT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line; got {self.seen!r}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _start(*args: str, json_mode: bool = False) -> tuple[Listen, str]:
    listen = Listen(*args, *(["--json"] if json_mode else []))
    if json_mode:
        line = listen.next_line(lambda text: text.startswith("{"))
        return listen, json.loads(line)["listening"]
    line = listen.next_line(lambda text: text.startswith("listening on "))
    return listen, line.split()[2]


def _package(webhook_id: str = "wh_1") -> bytes:
    event = {
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "type": "ORDER.FILLED",
        "object": {"id": "ord_1", "status": "FILLED"},
        "webhook_id": webhook_id,
    }
    return json.dumps({"payload": [event]}, separators=(",", ":")).encode()


def _signed(url: str, body: bytes, *, secret: str, key: SigningKey | None = None) -> dict[str, str]:
    return sign_package(
        url=url,
        body=body,
        msg_id=str(uuid.uuid4()),
        timestamp=int(time.time()),
        signing_key=key or generate_signing_key(),
        secrets=[secret],
    )


@pytest.fixture
def secret() -> str:
    return generate_secret()


@pytest.fixture
def listening(secret: str) -> Iterator[tuple[Listen, str]]:
    listen, base = _start("--secret", secret)
    try:
        yield listen, base
    finally:
        listen.stop()


def test_signed_package_is_accepted_and_printed_then_reported_as_duplicate(
    listening: tuple[Listen, str], secret: str
) -> None:
    listen, base = listening
    url = base + "hooks/hookline"
    body = _package()
    event_id = json.loads(body)["payload"][0]["id"]
    headers = _signed(url, body, secret=secret)

    first = httpx.post(url, content=body, headers=headers, timeout=WAIT)
    assert first.status_code == 204, first.text
    assert "1 new" in listen.next_line(lambda text: headers["webhook-id"] in text)
    event_line = listen.next_line(lambda text: event_id in text)
    assert "ORDER.FILLED" in event_line
    assert "duplicate" not in event_line

    again = httpx.post(url, content=body, headers=headers, timeout=WAIT)
    assert again.status_code == 204, again.text
    package_line = listen.next_line(lambda text: headers["webhook-id"] in text)
    assert "duplicate package" in package_line
    assert "(duplicate)" in listen.next_line(lambda text: event_id in text)


def test_tampered_package_is_rejected_with_401_and_printed(
    listening: tuple[Listen, str], secret: str
) -> None:
    listen, base = listening
    url = base + "hook"
    body = _package()
    headers = _signed(url, body, secret=secret)

    tampered = httpx.post(url, content=body.replace(b"FILLED", b"CANCEL"), headers=headers)
    assert tampered.status_code == 401
    assert tampered.text.startswith("BadSignature")
    assert "rejected" in listen.next_line(lambda text: headers["webhook-id"] in text)

    wrong_secret = _signed(url, body, secret=generate_secret())
    assert httpx.post(url, content=body, headers=wrong_secret).status_code == 401

    missing = {k: v for k, v in headers.items() if k != "webhook-signature"}
    answer = httpx.post(url, content=body, headers=missing)
    assert answer.status_code == 400
    assert "webhook-signature" in answer.text


class _JWKSHandler(BaseHTTPRequestHandler):
    document: bytes = b""
    api_key: str = ""
    authorizations: list[str | None] = []

    def do_GET(self) -> None:
        self.authorizations.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *_args: Any) -> None:
        pass


def test_jwks_mode_fetches_keys_with_the_api_key_and_prints_json() -> None:
    key = generate_signing_key()
    authorizations: list[str | None] = []

    class Handler(_JWKSHandler):
        pass

    Handler.document = json.dumps(jwks([key])).encode()
    Handler.api_key = "hk_test"
    Handler.authorizations = authorizations
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jwks_url = f"http://127.0.0.1:{server.server_address[1]}/auth/verify_keys"
    listen, base = _start("--jwks", jwks_url, "--api-key", "hk_test", json_mode=True)
    try:
        url = base + "hook"
        body = _package()
        headers = _signed(url, body, secret=generate_secret(), key=key)  # RFC 9421 only
        answer = httpx.post(url, content=body, headers=headers, timeout=WAIT)
        assert answer.status_code == 204, answer.text
        report = json.loads(listen.next_line(lambda text: headers["webhook-id"] in text))
        assert report["status"] == 204
        assert report["duplicate"] is False
        assert [e["id"] for e in report["events"]] == [json.loads(body)["payload"][0]["id"]]
        assert "Bearer hk_test" in authorizations

        forged = _signed(url, body, secret=generate_secret(), key=generate_signing_key())
        forged["Signature-Input"] = headers["Signature-Input"]  # claim the real keyid
        answer = httpx.post(url, content=body, headers=forged, timeout=WAIT)
        assert answer.status_code == 401
        rejected = json.loads(listen.next_line(lambda text: forged["webhook-id"] in text))
        assert rejected["status"] == 401
    finally:
        listen.stop()
        server.shutdown()
        server.server_close()


def test_without_key_material_it_fails_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookline", "listen", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: nothing to verify with")
