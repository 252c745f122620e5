"""Scale: worker CPU per delivered event must stay flat as the log and the number of webhooks
grow. (a) one webhook, a backlog of 10k vs 1M events: cost of delivering the first 10k
events. (b) 10 webhooks receiving events, beside 0 vs 9,990 idle webhooks (subscribed to a
category nobody publishes): cost per delivered event. Large backlogs are appended with
Hookline's own ``append_events`` (documented in docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

from bench.common import log, median
from bench.scenarios import Context
from bench.scenarios.backlog import Drain, run_drain

MEASURED = 10_000


def cases(ctx: Context) -> list[tuple[str, Drain]]:
    kind = "postgres" if "postgres" in ctx.dbs else ctx.dbs[0]
    small, large = ctx.size((10_000, 100_000), (10_000, 1_000_000))
    few, many = ctx.size((10, 1000), (10, 10_000))
    per_hook = ctx.size(2000, 5000)
    cap = ctx.time_cap
    return [
        (f"{kind} backlog {small:,}",
         Drain(kind, 1, small, build="append", wait_for=MEASURED, timeout=cap)),
        (f"{kind} backlog {large:,}",
         Drain(kind, 1, large, build="append", wait_for=MEASURED, timeout=cap)),
        (f"{kind} {few:,} webhooks", Drain(kind, few, per_hook, timeout=cap)),
        (f"{kind} {many:,} webhooks",
         Drain(kind, few, per_hook, idle_webhooks=many - few, timeout=cap)),
    ]  # fmt: skip


def run(ctx: Context) -> None:
    results: dict[str, Any] = {"measured_first_events": MEASURED}
    specs = cases(ctx)
    measured: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in specs}
    # Round by round, every other round in reverse: each case of a compared pair goes first
    # as often as the other, and drift over the scenario falls on both.
    for n in ctx.repeats("scale"):
        for label, spec in specs if n % 2 == 0 else specs[::-1]:
            log(f"scale {label}: run {n + 1}/{ctx.runs}")
            measured[label].append(run_drain(spec))
    for label, runs in measured.items():
        if not runs:
            continue
        med = {k: median(r[k] for r in runs) for k in runs[0]}
        results[label] = {"runs": runs, "median": med}
        ctx.table.add("scale", f"{label}: worker CPU per event", med["cpu_us_per_event"],
                      "µs/event")  # fmt: skip
        ctx.table.add("scale", f"{label}: events/s", med["events_per_s"], "events/s")
    labels = [label for label, _ in specs]
    for a, b in ((labels[0], labels[1]), (labels[2], labels[3])):
        if a in results and b in results:
            ratio = (
                results[b]["median"]["cpu_us_per_event"] / results[a]["median"]["cpu_us_per_event"]
            )
            results[f"{b} / {a}"] = ratio
            ctx.table.add("scale", f"cost {b} / {a}", ratio, "ratio")
    ctx.results["scale"] = results
