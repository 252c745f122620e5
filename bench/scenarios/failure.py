"""Failure: throughput to healthy webhooks while 10% of the webhooks never answer (the
receiver holds their requests until Hookline's request timeout fires), beside the same
healthy webhooks alone.

Quick runs deliver 5000 events to each webhook too (about 4 s of draining): at 1500 a run
lasted about a second, and the three pairs of one quick run gave ratios from 0.88 to 1.23.
Within a pair, the two runs take turns going first: the second of a pair measured a few per
cent slower whichever it was."""

from __future__ import annotations

from typing import Any

from bench.common import log, median
from bench.scenarios import Context
from bench.scenarios.backlog import Drain, run_drain


def run(ctx: Context) -> None:
    webhooks, events = ctx.size((50, 5000), (100, 5000))
    hanging = webhooks // 10
    healthy = webhooks - hanging
    results: dict[str, Any] = {"webhooks": webhooks, "hanging": hanging, "events": events}
    for kind in ctx.dbs:
        pairs = []
        for n in ctx.repeats(f"failure {kind}"):
            log(f"failure {kind}: run {n + 1}/{ctx.runs}, {healthy} healthy (+{hanging} hanging)")
            shapes = {
                "healthy_only": Drain(kind, healthy, events, timeout=ctx.time_cap),
                "with_hanging": Drain(kind, webhooks, events, hanging=hanging,
                                      timeout=ctx.time_cap),
            }  # fmt: skip
            # Each goes first in every other pair: what runs second is not always the same.
            order = list(shapes) if n % 2 == 0 else list(reversed(shapes))
            pairs.append({name: run_drain(shapes[name]) for name in order})
        if not pairs:
            continue
        a = median(p["healthy_only"]["events_per_s"] for p in pairs)
        b = median(p["with_hanging"]["events_per_s"] for p in pairs)
        results[kind] = {"runs": pairs, "healthy_only_events_per_s": a,
                         "with_hanging_events_per_s": b, "ratio": b / a}  # fmt: skip
        ctx.table.add("failure", f"{kind}: {healthy} healthy alone", a, "events/s")
        ctx.table.add("failure", f"{kind}: {healthy} healthy + {hanging} timing out", b,
                      "events/s")  # fmt: skip
        ctx.table.add("failure", f"{kind}: with timeouts / all healthy", b / a, "ratio")
    ctx.results["failure"] = results
