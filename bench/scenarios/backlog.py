"""The shape most scenarios share: build a backlog with no worker running, then start
``hookline worker`` and time it until the receiver has counted the events.

The backlog is published through ``POST /events`` (``build="api"``) or, for very large logs,
appended straight into the database with Hookline's own ``append_events`` (``build="append"``:
the same rows, sequence numbers and log-head update, without HTTP). Webhooks are created through
the API first (a webhook only receives events published after it was created).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import (
    BenchError,
    Receiver,
    Sampler,
    Stack,
    append_backlog,
    create_webhooks,
    fresh_database,
    hookline_env,
    log,
    make_events,
    new_tenant,
    publish_api,
    start_api,
    start_worker,
)


@dataclass
class Drain:
    """What to build and how long to wait."""

    kind: str  # sqlite | postgres
    webhooks: int  # webhooks that receive every event (type ALL)
    events: int  # events in the backlog
    idle_webhooks: int = 0  # webhooks that match none of the events (type REPORT)
    hanging: int = 0  # of ``webhooks``, how many never answer (their paths hang)
    build: str = "api"
    wait_for: int | None = None  # events to wait for (default: every delivery to answering paths)
    observe_for: float | None = None  # instead: run the worker this long, then stop
    timeout: float = 600
    max_package_size: int = 10240
    env: dict[str, str] | None = None


def run_drain(spec: Drain) -> dict[str, Any]:
    with Stack() as stack:
        receiver = Receiver(stack)
        db = fresh_database(stack, spec.kind)
        env = hookline_env(db, **(spec.env or {}))
        key = new_tenant(env)
        api_proc_count = len(stack.procs)
        api = start_api(stack, db, env)
        api_proc = stack.procs[api_proc_count]
        urls = [receiver.url(f"/h/{n}") for n in range(spec.webhooks)]
        built = time.perf_counter()
        asyncio.run(create_webhooks(api, key, urls, max_package_size=spec.max_package_size))
        if spec.idle_webhooks:
            idle = [receiver.url(f"/idle/{n}") for n in range(spec.idle_webhooks)]
            asyncio.run(create_webhooks(api, key, idle, types=["REPORT"]))
        hooks_s = time.perf_counter() - built
        if spec.build == "api":
            publish_s = asyncio.run(publish_api(api, key, spec.events))
        else:
            publish_s = asyncio.run(append_backlog(db.url, "bench", spec.events))
        api_proc.stop()
        log(f"  built: {spec.webhooks + spec.idle_webhooks} webhooks in {hooks_s:.1f}s, "
            f"{spec.events} events in {publish_s:.1f}s ({spec.build})")  # fmt: skip
        hang = [f"/h/{n}" for n in range(spec.webhooks - spec.hanging, spec.webhooks)]
        asyncio.run(receiver.reset(hang=hang))
        return _measure(stack, receiver, env, spec)


def _measure(stack: Stack, receiver: Receiver, env: dict[str, str], spec: Drain) -> dict[str, Any]:
    answering = spec.webhooks - spec.hanging
    expected = spec.wait_for or spec.events * answering
    t_start = time.time()
    worker = start_worker(stack, env)
    t_ready = time.time()
    sampler = Sampler(worker.pid)
    cpu0 = sampler.cpu()
    try:
        if spec.observe_for is not None:
            stats = asyncio.run(_observe(receiver, spec.observe_for))
        else:
            stats = asyncio.run(receiver.wait_events(expected, spec.timeout, [worker]))
        cpu1 = sampler.cpu()
    finally:
        sampler.stop()
    t0 = min(t_ready, stats["first"] or t_ready)
    end = stats["last"] if spec.observe_for is None else time.time()
    elapsed = max(end - t0, 1e-6)
    events = stats["events"]
    return {
        "events": events,
        "packages": stats["packages"],
        "duplicates": stats["duplicates"],
        "elapsed_s": elapsed,
        "startup_s": t_ready - t_start,
        "events_per_s": events / elapsed,
        "packages_per_s": stats["packages"] / elapsed,
        "events_per_package": events / max(stats["packages"], 1),
        "worker_cpu_s": cpu1 - cpu0,
        "cpu_us_per_event": (cpu1 - cpu0) / max(events, 1) * 1e6,
        "cpu_us_per_package": (cpu1 - cpu0) / max(stats["packages"], 1) * 1e6,
        "peak_rss_mb": sampler.peak_rss / 2**20,
    }


async def _observe(receiver: Receiver, seconds: float) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    return await receiver.stats()


# ----------------------------------------------------------------------------- the limit


def package_bodies(webhooks: int, events: int, per_package: int) -> list[list[bytes]]:
    """For each webhook, the bodies Hookline sends it (same events, same packing count)."""
    from hookline.delivery.payload import package_body
    from hookline.domain.events import StoredEvent, parse_new_event
    from hookline.ids import new_id, utcnow

    now = utcnow()
    stored = [
        StoredEvent(n + 1, new_id(), e["type"], now, parse_new_event(
            e, open_catalog=False, max_object_bytes=262_144, now=now).object_json)
        for n, e in enumerate(make_events(events))
    ]  # fmt: skip
    lanes = []
    for _ in range(webhooks):
        webhook_id = str(uuid.uuid4())
        lanes.append([
            package_body(stored[s : s + per_package], webhook_id)
            for s in range(0, events, per_package)
        ])  # fmt: skip
    return lanes


async def bare_post(url_of: list[str], lanes: list[list[bytes]], concurrency: int) -> float:
    """POST every body with one aiohttp session, one request at a time per webhook and at most
    ``concurrency`` in flight; seconds taken."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=15, connect=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def lane(url: str, bodies: list[bytes]) -> None:
            for body in bodies:
                async with gate:
                    headers = {"content-type": "application/json",
                               "webhook-id": str(uuid.uuid4())}  # fmt: skip
                    async with http.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise BenchError(f"receiver answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(lane(u, b) for u, b in zip(url_of, lanes, strict=True)))
        return time.perf_counter() - started


def run_bare(webhooks: int, events: int, per_package: int, concurrency: int) -> dict[str, Any]:
    lanes = package_bodies(webhooks, events, per_package)
    with Stack() as stack:
        receiver = Receiver(stack)
        urls = [receiver.url(f"/h/{n}") for n in range(webhooks)]
        seconds = asyncio.run(bare_post(urls, lanes, concurrency))
        stats = asyncio.run(receiver.stats())
    if stats["events"] != webhooks * events:
        raise BenchError(f"bare client: {stats['events']} of {webhooks * events} events arrived")
    return {
        "events_per_s": stats["events"] / seconds,
        "packages_per_s": stats["packages"] / seconds,
        "elapsed_s": seconds,
        "packages": stats["packages"],
    }
