"""Memory: peak RSS of one worker with 10k webhooks (every one subscribed to every event) and a
1M-event backlog, sampled every 100 ms while it works for a bounded time."""

from __future__ import annotations

from typing import Any

from bench.common import log, median
from bench.scenarios import Context
from bench.scenarios.backlog import Drain, run_drain


def run(ctx: Context) -> None:
    kind = "postgres" if "postgres" in ctx.dbs else ctx.dbs[0]
    webhooks, events = ctx.size((1000, 100_000), (10_000, 1_000_000))
    seconds = ctx.size(20, 90)
    runs = []
    for n in ctx.repeats("memory", at_least_once=True):
        log(f"memory {kind}: run {n + 1}, {webhooks} webhooks, {events} events, {seconds}s")
        spec = Drain(kind, webhooks, events, build="append", observe_for=seconds)
        runs.append(run_drain(spec))
    med = {k: median(r[k] for r in runs) for k in runs[0]}
    results: dict[str, Any] = {"kind": kind, "webhooks": webhooks, "events": events,
                               "observed_s": seconds, "runs": runs, "median": med}  # fmt: skip
    label = f"{kind} {webhooks:,} webhooks x {events:,} events"
    ctx.table.add("memory", f"{label}: worker peak RSS", med["peak_rss_mb"], "MB")
    ctx.table.add("memory", f"{label}: delivered in {seconds}s", med["events_per_s"], "events/s")
    ctx.results["memory"] = results
