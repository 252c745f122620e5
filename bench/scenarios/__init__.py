"""The benchmark scenarios. Each module has ``run(ctx)`` that adds rows to ``ctx.table`` and
its raw per-run numbers to ``ctx.results[name]``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import Table


@dataclass
class Context:
    quick: bool
    runs: int
    dbs: list[str]
    table: Table
    time_cap: float  # seconds one scenario may take before its remaining runs are skipped
    results: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def size(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full

    def deadline(self) -> float:
        return time.monotonic() + self.time_cap

    def repeats(self, label: str, *, at_least_once: bool = False) -> Iterator[int]:
        """Run numbers for one measurement, stopping (and reporting the skip) at the time cap."""
        deadline = self.deadline()
        for n in range(self.runs):
            if (n or not at_least_once) and time.monotonic() > deadline:
                self.skip(f"{label} run {n + 1}", "time cap")
                return
            yield n

    def skip(self, what: str, why: str) -> None:
        message = f"{what}: skipped ({why})"
        self.skipped.append(message)
        print(f"SKIPPED {message}", flush=True)
