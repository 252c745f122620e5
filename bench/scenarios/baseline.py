"""Baseline: the same events to the same receiver through a Celery task per event per webhook
(bench/baseline_celery, Redis broker, prefork worker, ``requests`` with retries).
(a) throughput: enqueue N events for one webhook as fast as possible; events/s from the first
enqueue to the last arrival, beside Hookline's drain to one webhook. (b) latency: enqueue at
1k events/s (the latency scenario's rate) for a few seconds; enqueue->receipt p50/p95/p99."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import BenchError, Receiver, Stack, log, make_events, median, percentile
from bench.scenarios import Context

CONCURRENCY = 8
RATE = 1000
TICK = 0.05


def _bodies(count: int) -> list[tuple[str, str]]:
    webhook_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for event in make_events(count):
        event_id = str(uuid.uuid4())
        item = {"id": event_id, "created_at": now, **event, "webhook_id": webhook_id}
        out.append((event_id, orjson.dumps({"payload": [item]}).decode()))
    return out


def _start_celery(stack: Stack) -> Any:
    import redis

    from bench.baseline_celery.app import BROKER, app

    redis.Redis.from_url(BROKER, socket_timeout=5).flushdb()
    stack.start("celery", [sys.executable, "-m", "celery", "-A", "bench.baseline_celery.app",
                           "worker", f"--concurrency={CONCURRENCY}", "-P", "prefork",
                           "-l", "warning", "--without-gossip", "--without-mingle",
                           "--without-heartbeat"])  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return app
        if stack.procs[-1].popen.poll() is not None:
            raise BenchError("celery worker exited:\n" + "\n".join(stack.procs[-1].lines))
    raise BenchError("celery worker did not answer a ping within 60s")


def _throughput(events: int) -> dict[str, Any]:
    from bench.baseline_celery.app import deliver

    bodies = _bodies(events)
    with Stack() as stack:
        receiver = Receiver(stack)
        _start_celery(stack)
        url = receiver.url("/h/0")
        asyncio.run(receiver.reset())
        t0 = time.time()
        for event_id, body in bodies:
            deliver.delay(url, event_id, body)
        enqueued = time.time() - t0
        stats = asyncio.run(receiver.wait_events(events, 300, stack.procs))
    elapsed = stats["last"] - t0
    return {"events_per_s": events / elapsed, "enqueue_per_s": events / enqueued,
            "elapsed_s": elapsed}  # fmt: skip


def _latency(seconds: float) -> dict[str, Any]:
    from bench.baseline_celery.app import deliver

    per_tick = int(RATE * TICK)
    bodies = _bodies(int(seconds / TICK) * per_tick)
    sent: dict[str, float] = {}
    with Stack() as stack:
        receiver = Receiver(stack)
        _start_celery(stack)
        url = receiver.url("/h/0")
        asyncio.run(receiver.reset(record=True))
        started = time.perf_counter()
        for tick in range(int(seconds / TICK)):
            wait = started + tick * TICK - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            for event_id, body in bodies[tick * per_tick : (tick + 1) * per_tick]:
                deliver.delay(url, event_id, body)
                sent[event_id] = time.time()
        rate = len(sent) / (time.perf_counter() - started)
        asyncio.run(receiver.wait_events(len(sent), 300, stack.procs))
        arrivals = asyncio.run(receiver.arrivals())
    lat = [(arrivals[i] - t) * 1000 for i, t in sent.items() if i in arrivals]
    return {"enqueue_rate": rate, "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99), "max_ms": max(lat),
            "samples": sorted(lat)[:: max(1, len(lat) // 2000)]}  # fmt: skip


def _redis_down() -> str | None:
    import redis

    from bench.baseline_celery.app import BROKER

    try:
        redis.Redis.from_url(BROKER, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {BROKER}: {exc}"
    return None


def run(ctx: Context) -> None:
    if why := _redis_down():
        ctx.skip("baseline", why)
        return
    events = ctx.size(2000, 5000)
    seconds = ctx.size(3, 5)
    results: dict[str, Any] = {"events": events, "latency_seconds": seconds,
                               "concurrency": CONCURRENCY, "pool": "prefork"}  # fmt: skip
    runs, lats = [], []
    for n in range(ctx.runs):
        log(f"baseline celery: run {n + 1}/{ctx.runs}, {events} events; {RATE}/s for {seconds}s")
        runs.append(_throughput(events))
        lats.append(_latency(seconds))
    med = {k: median(r[k] for r in runs) for k in runs[0]}
    lmed = {k: median(r[k] for r in lats) for k in lats[0] if k != "samples"}
    results.update(runs=runs, latency_runs=lats, median=med, latency_median=lmed)
    t = ctx.table
    t.add("baseline", "celery: events/s to one webhook", med["events_per_s"], "events/s")
    t.add("baseline", "celery: enqueue rate (delay())", med["enqueue_per_s"], "events/s")
    t.add("baseline", f"celery: enqueue rate achieved at {RATE}/s", lmed["enqueue_rate"],
          "events/s")  # fmt: skip
    for q in ("p50", "p95", "p99"):
        t.add("baseline", f"celery: {q} enqueue->receipt", lmed[f"{q}_ms"], "ms")
    drain = ctx.results.get("drain", {})
    for kind in ctx.dbs:
        hook = drain.get(f"{kind} 1 webhook", {}).get("median")
        if hook:
            ratio = hook["events_per_s"] / med["events_per_s"]
            results[f"hookline_{kind}_over_celery"] = ratio
            t.add("baseline", f"Hookline {kind} drain (1 webhook) / celery", ratio, "ratio")
    ctx.results["baseline"] = results
