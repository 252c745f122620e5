"""The benchmark scenarios. Each module has ``run(ctx)`` that adds rows to ``ctx.table`` and
its raw per-run numbers to ``ctx.results[name]``."""

from __future__ import annotations

import time
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

    def skip(self, what: str, why: str) -> None:
        message = f"{what}: skipped ({why})"
        self.skipped.append(message)
        print(f"SKIPPED {message}", flush=True)
