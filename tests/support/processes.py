"""Start ``hookline`` commands as real processes and wait for them to be ready."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping

LISTENING = re.compile(r"Hookline listening on (http://\S+)")


def hookline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hookline", *args]


def start(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        hookline_command(*args),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float = 30):
    """Read the process's output until ``pattern`` matches; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = pattern.search(line)
        if match:
            return match
    process.kill()
    raise AssertionError(f"process never printed {pattern.pattern!r}; output: {''.join(seen)}")


def run_json(args: list[str], env: Mapping[str, str]) -> str:
    done = subprocess.run(
        hookline_command(*args), env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
