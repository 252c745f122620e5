"""What every scenario needs: processes, throw-away databases, the receiver, the API, numbers.

Everything listens on and talks to 127.0.0.1 only; every wait has a deadline; every process
started here is stopped by :class:`Stack` on exit, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "HOOKLINE_BENCH_POSTGRES_URL", "postgresql://hookline:hookline@127.0.0.1:5432/postgres"
)
SECRET_KEY = "bench-secret-key-0123456789abcdef"
LISTENING = re.compile(r"Hookline listening on (http://\S+)")
WORKER_READY = re.compile(r"worker running")
RECEIVER_READY = re.compile(r"receiver listening on (http://\S+)")
EVENT_TYPE = "ORDER.FILLED"
PAD = "x" * 160  # makes an event ~330 bytes on the wire: ~30 events per 10 KiB package


def python_path() -> str:
    """bench/ importable; with ``--ref``, that snapshot's src/ ahead of the working tree's."""
    snapshot = os.environ.get("HOOKLINE_BENCH_SRC")
    return os.pathsep.join([p for p in (snapshot, str(ROOT)) if p])


class BenchError(RuntimeError):
    """A scenario could not run (a process died, a wait ran out of time)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- processes


class Proc:
    """A child process whose combined output is drained by a thread (so it never blocks) and
    searched for lines."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.lines: deque[str] = deque(maxlen=200)
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": python_path(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _drain(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        checked = 0
        with self._cond:
            while True:
                seen = list(self.lines)
                for line in seen[checked:]:
                    if match := pattern.search(line):
                        return match
                    if line.startswith("Traceback (most recent call last)"):
                        deadline = min(deadline, time.monotonic() + 2)
                checked = len(seen)
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and checked == len(self.lines)):
                    tail = "\n".join(list(self.lines)[-20:])
                    raise BenchError(f"{self.name} never printed {pattern.pattern!r}:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


class Stack:
    """Processes and cleanups of one run, undone in reverse order on exit."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.cleanups: list[Callable[[], None]] = []

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env or {})
        self.procs.append(proc)
        return proc

    def hookline(self, name: str, args: list[str], env: Mapping[str, str]) -> Proc:
        return self.start(name, [sys.executable, "-m", "hookline", *args], env)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception as error:  # keep stopping the others
                log(f"could not stop {proc.name}: {error}")
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:
                log(f"cleanup failed: {error}")


def run_cli(args: list[str], env: Mapping[str, str], timeout: float = 60) -> Any:
    """``hookline ARGS --json`` -> the JSON object it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "hookline", *args, "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"hookline {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


# ----------------------------------------------------------------------------- databases


@dataclass
class Database:
    """One throw-away database: an SQLite file in a temp dir, or a fresh PostgreSQL database."""

    kind: str
    url: str
    drop: Callable[[], None]


def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def fresh_database(stack: Stack, kind: str) -> Database:
    """Create a migrated, empty database of ``kind`` ("sqlite" or "postgres")."""
    from hookline.store.migrate import migrate

    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="hookline-bench-")
        db = Database(kind, f"sqlite:///{folder}/hookline.db", lambda: shutil.rmtree(folder, True))
    else:
        name = f"hookline_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        db = Database(kind, _pg_url(name), drop)
    stack.cleanups.append(db.drop)
    migrate(db.url)
    return db


def postgres_available() -> str | None:
    """None if the benchmark PostgreSQL answers, else why not."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def hookline_env(db: Database, **extra: str) -> dict[str, str]:
    env = {
        "HOOKLINE_DATABASE_URL": db.url,
        "HOOKLINE_SECRET_KEY": SECRET_KEY,
        "HOOKLINE_ALLOW_INSECURE_TARGETS": "true",
        "HOOKLINE_RETENTION_INTERVAL": "0",
        "HOOKLINE_RETENTION_EVENTS": "0",
        "HOOKLINE_RETENTION_HISTORY": "0",
    }
    env.update(extra)
    return env


def start_api(stack: Stack, db: Database, env: Mapping[str, str], role: str = "api") -> str:
    """Start ``hookline api`` (or ``serve``) on a free port; its base URL."""
    proc = stack.hookline(role, [role, "--host", "127.0.0.1", "--port", "0"], env)
    return proc.wait_for(LISTENING, timeout=90).group(1)


def start_worker(stack: Stack, env: Mapping[str, str]) -> Proc:
    proc = stack.hookline("worker", ["worker"], env)
    proc.wait_for(WORKER_READY, timeout=90)
    return proc


def new_tenant(env: Mapping[str, str], name: str = "bench") -> str:
    """Create a tenant with the CLI; its API key."""
    return str(run_cli(["tenants", "create", name], env)["api_key"])


# ----------------------------------------------------------------------------- receiver


class Receiver:
    """Client of bench/receiver.py running in its own process."""

    def __init__(self, stack: Stack) -> None:
        proc = stack.start("receiver", [sys.executable, "-m", "bench.receiver", "--port", "0"])
        self.proc = proc
        self.base = proc.wait_for(RECEIVER_READY, timeout=30).group(1)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            data = orjson.dumps(body) if body is not None else None
            async with session.request(method, self.url(path), data=data) as response:
                return orjson.loads(await response.read())

    async def reset(self, **options: Any) -> None:
        await self._call("POST", "/_bench/reset", options)

    async def stats(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/_bench/stats"))

    async def arrivals(self) -> dict[str, float]:
        return dict(await self._call("GET", "/_bench/arrivals"))

    async def per_path(self) -> dict[str, int]:
        return dict(await self._call("GET", "/_bench/paths"))

    async def wait_events(
        self, expected: int, within: float, procs: Sequence[Proc] = ()
    ) -> dict[str, Any]:
        """Poll until ``expected`` events arrived; the last stats. Raises on timeout."""
        deadline = time.monotonic() + within
        while True:
            stats = await self.stats()
            if stats["events"] >= expected:
                return stats
            for proc in procs:
                if proc.popen.poll() is not None:
                    tail = "\n".join(list(proc.lines)[-15:])
                    raise BenchError(f"{proc.name} exited early:\n{tail}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"timed out after {within:.0f}s: {stats['events']}/{expected} events"
                )
            await asyncio.sleep(0.1)


# ----------------------------------------------------------------------------- API calls


def make_events(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"type": EVENT_TYPE, "object": {"id": f"o-{n}", "n": n, "pad": PAD}}
        for n in range(start, start + count)
    ]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


async def create_webhooks(
    api: str,
    key: str,
    urls: Sequence[str],
    *,
    types: Sequence[str] = ("ALL",),
    delay: str = "1s",
    max_package_size: int = 10240,
    concurrency: int = 16,
) -> list[str]:
    """Create one webhook per URL through the API; their ids in order."""
    ids: list[str | None] = [None] * len(urls)
    gate = asyncio.Semaphore(concurrency)
    config = {"delay": delay, "max_package_size": max_package_size}
    async with aiohttp.ClientSession(base_url=api, timeout=aiohttp.ClientTimeout(60)) as http:

        async def one(n: int, url: str) -> None:
            body = {"title": f"bench {n}", "url": url, "type": list(types), "config": config}
            async with (
                gate,
                http.post("/webhooks", data=orjson.dumps(body), headers=auth(key)) as r,
            ):
                if r.status != 201:
                    raise BenchError(f"POST /webhooks -> {r.status}: {await r.text()}")
                ids[n] = (await r.json())["id"]

        await asyncio.gather(*(one(n, url) for n, url in enumerate(urls)))
    return [i for i in ids if i]


async def publish_api(
    api: str, key: str, total: int, *, batch: int = 500, concurrency: int = 4
) -> float:
    """Publish ``total`` events through POST /events in batches; seconds taken."""
    bodies = [
        orjson.dumps({"events": make_events(min(batch, total - s), s)})
        for s in range(0, total, batch)
    ]
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(base_url=api, timeout=aiohttp.ClientTimeout(120)) as http:

        async def one(body: bytes) -> None:
            async with gate, http.post("/events", data=body, headers=auth(key)) as r:
                if r.status != 201:
                    raise BenchError(f"POST /events -> {r.status}: {(await r.text())[:300]}")
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started


async def append_backlog(db_url: str, tenant_name: str, total: int, batch: int = 500) -> float:
    """Append ``total`` events straight into the log with Hookline's own append_events (the same
    rows, sequence numbers and head update as POST /events, without HTTP). Seconds taken by
    validating and appending, not by making the producer's dicts (as ``publish_api`` makes
    its bodies before its clock starts)."""
    from hookline.domain.events import parse_new_event
    from hookline.ids import utcnow
    from hookline.store import tenants
    from hookline.store.db import Database as HooklineDb
    from hookline.store.events import append_events

    db = HooklineDb(db_url)
    try:
        async with db.read() as conn:
            tenant_id = await tenants.find_tenant(conn, tenant_name)
        taken = 0.0
        for start in range(0, total, batch):
            produced = make_events(min(batch, total - start), start)
            started = time.perf_counter()
            now = utcnow()
            new = [
                parse_new_event(e, open_catalog=False, max_object_bytes=262_144, now=now)
                for e in produced
            ]
            async with db.write() as conn:
                await append_events(conn, tenant_id, new, now=now)
            taken += time.perf_counter() - started
        return taken
    finally:
        await db.close()


# ----------------------------------------------------------------------------- numbers


class Sampler:
    """Samples the RSS and CPU time of a process and its children (a worker run with
    ``--processes N`` is a parent and N workers) in a thread (psutil). RSS is the sum over
    the tree at each sample; CPU time counts the children alive when asked."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak_rss = 0
        self._children: list[psutil.Process] = []
        self._looked = 0.0  # when the children were last listed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self, fresh: bool = False) -> list[psutil.Process]:
        # Listing children reads every process's stat (~1 ms): once a second, not per sample.
        if fresh or time.monotonic() - self._looked >= 1.0:
            self._children = self.process.children(recursive=True)
            self._looked = time.monotonic()
        return [self.process, *self._children]

    def cpu(self) -> float:
        total = 0.0
        try:
            for process in self._tree(fresh=True):
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    total += times.user + times.system
        except psutil.Error:
            return float("nan")
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = 0
                for process in self._tree():
                    with contextlib.suppress(psutil.Error):
                        rss += process.memory_info().rss
                self.peak_rss = max(self.peak_rss, rss)
            except psutil.Error:
                return
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Table:
    """Rows printed to stdout as they come, kept for the report."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, scenario: str, metric: str, value: float, unit: str, **extra: Any) -> None:
        row = {"scenario": scenario, "metric": metric, "value": value, "unit": unit, **extra}
        self.rows.append(row)
        if isinstance(value, float):
            shown = (
                f"{value:,.3f}" if unit in ("ratio", "ms/event", "µs/event") else f"{value:,.1f}"
            )
        else:
            shown = str(value)
        note = "  ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{scenario:<10} {metric:<48} {shown:>14} {unit:<10} {note}", flush=True)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            timeout=10, check=False,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True,
            timeout=10, check=False,
        )  # fmt: skip
        return out.stdout.strip() + ("+dirty src" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages: dict[str, str | None] = {}
    for name in ("hookline", "aiohttp", "uvicorn", "fastapi", "sqlalchemy", "asyncpg",
                 "aiosqlite", "orjson", "uvloop", "celery", "redis", "requests", "psutil",
                 "matplotlib"):  # fmt: skip
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    pg = None
    try:
        import asyncpg

        async def pg_version() -> str:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        pg = asyncio.run(pg_version())
    except Exception:
        pass
    import sqlite3

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": pg,
        "sqlite": sqlite3.sqlite_version,
        "packages": packages,
        "git_commit": git_commit(),
    }
