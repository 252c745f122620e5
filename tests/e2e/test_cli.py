"""The ``hookline`` command line, run as a subprocess against an SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hookline.cli import app
from hookline.store.db import Database
from hookline.store.tenants import Principal, authenticate

pytestmark = pytest.mark.slow
SECRET_KEY = "cli-test-secret-key-0123456789"


@dataclass
class Cli:
    """Runs ``python -m hookline`` with a clean ``HOOKLINE_*`` environment in ``home``."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def at(cls, home: Path) -> Cli:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        env.update(
            HOOKLINE_DATABASE_URL=f"sqlite:///{home / 'h.db'}",
            HOOKLINE_SECRET_KEY=SECRET_KEY,
            NO_COLOR="1",
        )
        return cls(home, env)

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hookline", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.home,
            env={**self.env, **(env or {})},
            timeout=60,
        )

    def json(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        """Run with ``--json``: exit 0 and exactly one JSON object on stdout."""
        done = self(*args, "--json", **kwargs)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 1, done.stdout
        parsed = json.loads(lines[0])
        assert isinstance(parsed, dict)
        return parsed


def one_line_error(done: subprocess.CompletedProcess[str], *, code: int = 1) -> str:
    """The command failed with ``code`` and said so in one ``error: ...`` line on stderr."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr
    return lines[0]


def principal_of(cli: Cli, key: str) -> Principal | None:
    """What the database says about a key (as the API would authenticate it)."""

    async def look() -> Principal | None:
        db = Database(cli.env["HOOKLINE_DATABASE_URL"])
        try:
            async with db.read() as conn:
                return await authenticate(conn, key)
        finally:
            await db.engine.dispose()

    return asyncio.run(look())


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A database with tenant ``acme`` (its creation is itself under test)."""
    return Cli.at(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def acme(cli: Cli) -> dict[str, Any]:
    created = cli.json("tenants", "create", "acme")
    return created


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"got it")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


INSECURE = {"HOOKLINE_ALLOW_INSECURE_TARGETS": "true"}


# --- tenants and keys ---------------------------------------------------------------------


def test_tenants_create(cli: Cli, acme: dict[str, Any]) -> None:
    assert set(acme) >= {"tenant_id", "api_key"}
    assert acme["api_key"].startswith("hk_")
    principal = principal_of(cli, acme["api_key"])
    assert principal is not None
    assert principal.tenant_id == acme["tenant_id"]
    assert principal.scopes == {"webhooks:read", "webhooks:admin", "events:publish", "events:read"}
    line = one_line_error(cli("tenants", "create", "acme", "--json"))
    assert "acme" in line


def test_keys_create_and_revoke(cli: Cli, acme: dict[str, Any]) -> None:
    made = cli.json("keys", "create", "--tenant", "acme", "--scope", "events:read")
    assert made["tenant_id"] == acme["tenant_id"]
    assert made["scopes"] == ["events:read"]
    assert made["api_key"].startswith("hk_")
    principal = principal_of(cli, made["api_key"])
    assert principal is not None
    assert principal.scopes == {"events:read"}
    assert principal.key_id == made["key_id"]

    revoked = cli("keys", "revoke", made["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert made["key_id"] in revoked.stdout
    assert principal_of(cli, made["api_key"]) is None
    assert principal_of(cli, acme["api_key"]) is not None
    unknown = "0190b3f0-0000-7000-8000-000000000000"
    assert unknown in one_line_error(cli("keys", "revoke", unknown))


def test_rotate_signing_key(cli: Cli) -> None:
    rotated = cli.json("keys", "rotate-signing")
    assert rotated["alg"] == "ed25519"
    assert rotated["kid"].startswith("hk_")
    assert rotated["kid"] in rotated["published"]
    assert len(rotated["published"]) >= 2  # the previous key stays published for the overlap


# --- webhooks -----------------------------------------------------------------------------


def test_webhooks_create_and_list(cli: Cli, acme: dict[str, Any]) -> None:
    url = "http://127.0.0.1:9/x"
    assert "url" in one_line_error(cli("webhooks", "create", "-t", "acme", "--url", url, "--json"))
    created = cli.json(
        "webhooks", "create", "--tenant", "acme", "--url", url,
        "--title", "local", "--type", "ORDER", "--type", "USER", "--delay", "5s",
        env=INSECURE,
    )  # fmt: skip
    assert created["url"] == url
    assert created["title"] == "local"
    assert created["type"] == ["ORDER", "USER"]
    assert created["enabled"] is True
    assert created["config"] == {"delay": "5s", "max_package_size": 10240}
    listed = cli.json("webhooks", "list", "--tenant", "acme")
    assert list(listed) == ["data"]
    assert [w for w in listed["data"] if w["url"] == url] == [created]
    bad = cli("webhooks", "create", "-t", "acme", "--url", "https://a.example.com/",
              "--type", "NOPE")  # fmt: skip
    assert "type" in one_line_error(bad)


def test_webhooks_test_against_a_loopback_receiver(
    cli: Cli, acme: dict[str, Any], loopback: ThreadingHTTPServer
) -> None:
    created = cli.json(
        "webhooks", "create", "-t", "acme", "--url", url_of(loopback, "/cli"), env=INSECURE
    )
    result = cli.json("webhooks", "test", created["id"], "--tenant", "acme", env=INSECURE)
    assert result["status"] == 200
    assert result["body"] == "got it"
    assert result["url"] == url_of(loopback, "/cli")
    [(path, headers, body)] = loopback.received  # type: ignore[attr-defined]
    assert path == "/cli"
    assert headers["webhook-id"] == result["package_id"]
    [event] = json.loads(body)["payload"]
    assert event["type"] == "WEBHOOK.TEST"
    assert event["webhook_id"] == created["id"]


# --- events -------------------------------------------------------------------------------


def test_events_publish_from_a_file_and_stdin(cli: Cli, acme: dict[str, Any]) -> None:
    known = "0190b3f0-0000-7000-8000-00000000000a"
    source = cli.home / "events.json"
    source.write_text(json.dumps({"events": [
        {"type": "USER.CREATED", "object": {"n": 1}},
        {"type": "ORDER.NEW", "object": {"n": 2}, "id": known},
    ]}))  # fmt: skip
    stored = cli.json("events", "publish", "--tenant", "acme", str(source))
    assert list(stored) == ["events"]
    first, second = stored["events"]
    assert second["sequence"] == first["sequence"] + 1
    assert [e["type"] for e in stored["events"]] == ["USER.CREATED", "ORDER.NEW"]
    assert second["id"] == known
    assert second["object"] == {"n": 2}

    piped = cli.json(
        "events", "publish", "-t", acme["tenant_id"], "-",
        stdin=json.dumps([{"type": "REPORT.CREATED", "object": {"r": 1}},
                          {"type": "ORDER.NEW", "object": {"n": 99}, "id": known}]),
    )  # fmt: skip
    fresh, again = piped["events"]
    assert (fresh["type"], fresh["sequence"]) == ("REPORT.CREATED", second["sequence"] + 1)
    assert again == second  # idempotent on id: the first version, not stored again


def test_events_publish_rejects_bad_input(cli: Cli, acme: dict[str, Any]) -> None:
    broken = cli.home / "broken.json"
    broken.write_text('{"type": "USER.CREATED",')
    assert "broken.json" in one_line_error(cli("events", "publish", "-t", "acme", str(broken)))
    unknown = cli(
        "events", "publish", "-t", "acme", "--json",
        stdin='[{"type": "USER.CREATED", "object": {}}, {"type": "NOPE.GONE", "object": {}}]',
    )  # fmt: skip
    line = one_line_error(unknown)
    assert "[1].type" in line
    assert "NOPE.GONE" in line


# --- settings and schema ------------------------------------------------------------------


def test_migrate(tmp_path: Path) -> None:
    done = Cli.at(tmp_path)("migrate")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert (tmp_path / "h.db").stat().st_size > 0


def test_bad_environment_is_one_line(cli: Cli) -> None:
    line = one_line_error(cli("migrate", env={"HOOKLINE_DISABLE_AFTER": "nonsense"}))
    assert "HOOKLINE_DISABLE_AFTER" in line


# --- more error lines, in process (each subprocess costs a second of imports) -------------


@pytest.fixture
def in_process(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in cli.env.items():
        if name.startswith("HOOKLINE_"):
            monkeypatch.setenv(name, value)
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["keys", "create", "-t", "acme", "-s", "root"], "", "scopes"),
        (["keys", "create", "-t", "nobody"], "", "nobody"),
        (["events", "publish", "-t", "acme", "missing.json"], "", "missing.json"),
        (["events", "publish", "-t", "acme"], "[1]", "[0]: must be a JSON object"),
        (["events", "publish", "-t", "acme"], '{"type": "USER.CREATED", "object": 1}', "object"),
        (["events", "publish", "-t", "acme"], '{"type": "USER.CREATED", "x": 1}', "[0].x"),
        (["events", "publish", "-t", "nobody"], '{"type": "USER.CREATED", "object": {}}', "nobody"),
        (["webhooks", "create", "-t", "acme", "--url", "https://a.example.com/", "--delay", "0s"],
         "", "config.delay"),
        (["webhooks", "list", "-t", "nobody"], "", "nobody"),
        (["webhooks", "test", "0190b3f0-0000-7000-8000-000000000000", "-t", "acme"], "", "webhook"),
    ],
)  # fmt: skip
def test_errors_are_one_line(
    in_process: CliRunner, acme: dict[str, Any], args: list[str], stdin: str, needle: str
) -> None:
    done = in_process.invoke(app, [*args, "--json"], input=stdin)
    assert done.exit_code == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert needle in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("tenants", "create"), "Missing argument"),
        (("webhooks", "create", "--tenant", "acme"), "Missing option '--url'"),
        (("events", "publish", "--tenant", "acme", "--bogus"), "No such option: --bogus"),
        (("nonsense",), "No such command"),
    ],
)
def test_usage_mistakes_are_one_line_with_exit_2(
    cli: Cli, args: tuple[str, ...], says: str
) -> None:
    message = one_line_error(cli(*args), code=2)
    assert says in message
    assert "--help" in message
