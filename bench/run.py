"""Hookline's benchmark suite: one entry point.

    python -m bench.run [--quick] [--only ingest,drain,...] [--runs N] [--db sqlite,postgres]

Starts everything it needs on 127.0.0.1 (Hookline processes, the receiver, a Celery worker),
runs each scenario a few times, prints a table as it goes, and writes
bench/results/<date>.json, bench/results/<date>.md and PNG plots. Never fails on a number:
the exit code is non-zero only when the harness itself breaks.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path

from bench.common import ROOT, Table, log, machine, postgres_available
from bench.scenarios import Context

SCENARIOS = ["ingest", "drain", "latency", "scale", "memory", "failure", "baseline"]
RESULTS = Path(__file__).resolve().parent / "results"


def use_ref(ref: str) -> str:
    """Extract src/ of ``ref`` into a temp dir and put it ahead of the working tree's, in this
    process and in every process the benchmarks start. Nothing in the repository changes."""
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=30).stdout.strip()  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="hookline-bench-src-"))
    archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, check=True,
                             capture_output=True, timeout=60).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True, timeout=60)
    atexit.register(shutil.rmtree, folder, True)
    os.environ["HOOKLINE_BENCH_SRC"] = str(folder / "src")
    sys.path.insert(0, str(folder / "src"))
    return f"git {commit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hookline benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default="", help="comma-separated scenarios")
    parser.add_argument("--runs", type=int, default=0, help="repetitions (default 3; quick 1)")
    parser.add_argument("--db", default="sqlite,postgres", help="databases to run on")
    parser.add_argument("--time-cap", type=float, default=0, help="seconds per scenario")
    parser.add_argument("--out", default=str(RESULTS), help="where results go")
    parser.add_argument(
        "--tag", default="", help="added to the result file names: <date>[-quick]-<tag>.json"
    )
    parser.add_argument(
        "--ref", default="", help="benchmark src/ as of this git ref (default: the working tree)"
    )
    args = parser.parse_args(argv)
    tag = args.tag.lstrip("-")  # "-x" (how it was once given) and "x" name the same files
    if tag and not re.fullmatch(r"[A-Za-z0-9._-]+", tag):
        parser.error(f"--tag: letters, digits, '.', '_' and '-' only, not {args.tag!r}")
    source = use_ref(args.ref) if args.ref else "working tree"

    chosen = [s for s in (args.only.split(",") if args.only else SCENARIOS) if s]
    dbs = [d for d in args.db.split(",") if d]
    table = Table()
    ctx = Context(
        quick=args.quick,
        runs=args.runs or (1 if args.quick else 3),
        dbs=dbs,
        table=table,
        time_cap=args.time_cap or (150 if args.quick else 600),
    )
    if "postgres" in dbs and (why := postgres_available()):
        ctx.skip("PostgreSQL variants", f"no server: {why}")
        ctx.dbs = [d for d in dbs if d != "postgres"]
    info = machine()
    log(f"machine: {info['cpu_count']} x {info['cpu_model']}, {info['memory_gb']} GB, "
        f"Python {info['python']}, commit {info['git_commit']}")  # fmt: skip
    started = time.monotonic()
    durations: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in chosen:
        module = importlib.import_module(f"bench.scenarios.{name}")
        began = time.monotonic()
        try:
            module.run(ctx)
        except Exception as exc:
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"[:2000]
            ctx.skip(name, f"error: {type(exc).__name__}: {str(exc)[:300]}")
        durations[name] = round(time.monotonic() - began, 1)
        log(f"{name} took {durations[name]:.0f}s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = date.today().isoformat() + ("-quick" if args.quick else "") + (f"-{tag}" if tag else "")
    report = {
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "source": source,
        "runs": ctx.runs,
        "scenarios": chosen,
        "durations_s": durations,
        "total_s": round(time.monotonic() - started, 1),
        "rows": table.rows,
        "results": ctx.results,
        "skipped": ctx.skipped,
        "errors": errors,
    }
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    from bench.report import write_report

    md = write_report(report, out, stem)
    log(f"wrote {out / (stem + '.json')} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
