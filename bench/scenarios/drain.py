"""Drain: a backlog to 1, 100 and 1000 webhooks (every webhook subscribes to every event);
events/s and packages/s delivered, beside a bare aiohttp client posting the same package
bodies to the same receiver with the same concurrency and no database (the limit).

To keep runs bounded, the backlog shrinks as webhooks grow: full runs send 100k events to
1 webhook, 10k to each of 100 and 1k to each of 1000 (1M deliveries each); quick runs 20k to 1,
200 to each of 100 and 100 to each of 1000 (several packages per webhook, so a quick run
measures draining, not each webhook's first package).

Packages are the default 10 KiB (about 27 events), which is what the targets are judged on.
One more run drains the one-webhook backlog with the largest packages a webhook may ask for
(1 MiB, at most ``HOOKLINE_MAX_PACKAGE_EVENTS`` events): what a receiver that prefers fewer,
bigger requests gets. And one more drains the 1000-webhook backlog with ``hookline worker
--processes auto`` (one worker process per CPU, sharing the webhooks), as a machine that only
delivers runs it; every other run uses one worker process, the default."""

from __future__ import annotations

from typing import Any

from bench.common import log, median
from bench.scenarios import Context
from bench.scenarios.backlog import Drain, run_bare, run_drain
from hookline.supervisor import process_count

MAX_CONCURRENCY = 256  # HOOKLINE_MAX_CONCURRENCY's default


DEFAULT_SIZE = 10240
LARGEST_SIZE = 1048576


def shapes(ctx: Context) -> list[tuple[int, int, int, int]]:
    """(webhooks, events each, max_package_size, worker processes)"""
    if ctx.quick:
        shapes = [(1, 20_000), (100, 200), (1000, 100)]
    else:
        shapes = [(1, 100_000), (100, 10_000), (1000, 1000)]
    ones, thousands = shapes[0][1], shapes[2][1]
    out = [(w, e, DEFAULT_SIZE, 1) for w, e in shapes] + [(1, ones, LARGEST_SIZE, 1)]
    cpus = process_count("auto")
    return out + ([(1000, thousands, DEFAULT_SIZE, cpus)] if cpus > 1 else [])


def label_of(kind: str, webhooks: int, size: int, processes: int = 1) -> str:
    label = f"{kind} {webhooks} webhook{'s' if webhooks > 1 else ''}"
    if size != DEFAULT_SIZE:
        label += f", {size // 2**20} MiB packages"
    return label if processes == 1 else f"{label}, {processes} processes"


def run(ctx: Context) -> None:
    results: dict[str, Any] = {"shapes": shapes(ctx), "max_package_size": DEFAULT_SIZE}
    for kind in ctx.dbs:
        for webhooks, events, size, processes in shapes(ctx):
            label = label_of(kind, webhooks, size, processes)
            runs, bare = [], []
            for n in ctx.repeats(f"drain {label}"):
                log(f"drain {label}: run {n + 1}/{ctx.runs}, {events} events each")
                spec = Drain(kind, webhooks, events, timeout=ctx.time_cap, max_package_size=size,
                             env={"HOOKLINE_WORKER_PROCESSES": str(processes)})  # fmt: skip
                runs.append(run_drain(spec))
                per_package = max(1, round(runs[-1]["events_per_package"]))
                bare.append(run_bare(webhooks, events, per_package,
                                     min(webhooks, MAX_CONCURRENCY)))  # fmt: skip
            if not runs:
                continue
            med = {k: median(r[k] for r in runs) for k in runs[0]}
            bmed = {k: median(r[k] for r in bare) for k in bare[0]}
            results[label] = {"events": events, "webhooks": webhooks, "max_package_size": size,
                              "processes": processes, "runs": runs, "bare": bare, "median": med,
                              "bare_median": bmed}  # fmt: skip
            t = ctx.table
            t.add("drain", f"{label}: events/s", med["events_per_s"], "events/s",
                  events_per_package=round(med["events_per_package"], 1))  # fmt: skip
            t.add("drain", f"{label}: packages/s", med["packages_per_s"], "packages/s")
            t.add("drain", f"{label}: bare aiohttp packages/s", bmed["packages_per_s"],
                  "packages/s")  # fmt: skip
            t.add("drain", f"{label}: packages/s / bare aiohttp",
                  med["packages_per_s"] / bmed["packages_per_s"], "ratio")  # fmt: skip
            t.add("drain", f"{label}: worker CPU per event", med["cpu_us_per_event"],
                  "µs/event")  # fmt: skip
    ctx.results["drain"] = results
