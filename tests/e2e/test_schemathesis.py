"""The OpenAPI contract, fuzzed: schemathesis drives a real ``hookline serve`` process with
generated (valid and invalid) requests for every operation and checks that no answer is a 5xx,
every status code is documented, and every body matches its documented schema.

Bounded: 15 valid and 10 invalid examples per operation, then 10 + 5 more with the ids of
real objects in the path (about 550 requests in all).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import APIOperation

from tests.support.processes import LISTENING, run_json, start, stop_all, wait_for_line

pytestmark = pytest.mark.slow
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _objects(url: str, key: str) -> dict[str, str]:
    """A real webhook and event, so that fuzzing reaches past the 404 of unknown ids."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        hook = client.post("/webhooks", json={"title": "t", "url": "https://hook.invalid/in"})
        event = client.post("/events", json={"type": "USER.CREATED", "object": {}})
    assert (hook.status_code, event.status_code) == (201, 201), (hook.text, event.text)
    return {"webhook_id": hook.json()["id"], "event_id": event.json()["id"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of a production-mode ``hookline serve`` on a fresh database."""
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    env = {
        "HOOKLINE_DATABASE_URL": f"sqlite:///{directory / 'hookline.db'}",
        "HOOKLINE_SECRET_KEY": "schemathesis-secret-key-0123456789",
        "HOOKLINE_LOG_LEVEL": "warning",
    }
    created = json.loads(run_json(["tenants", "create", "fuzz", "--json"], env))
    process: subprocess.Popen[str] = start(["serve", "--port", "0"], env)
    try:
        url = wait_for_line(process, LISTENING).group(1)
        yield url, created["api_key"]
    finally:
        stop_all([process])


@pytest.fixture(scope="module")
def api_schema(served: tuple[str, str]) -> schemathesis.BaseSchema:
    url, _ = served
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


def _fuzz(
    operation: APIOperation, mode: GenerationMode, key: str, examples: int,
    objects: dict[str, str] | None = None,
) -> int:  # fmt: skip
    """Run the checks on generated cases; returns how many requests were sent."""
    sent = 0
    names = {p.name for p in operation.path_parameters}
    known = {k: v for k, v in (objects or {}).items() if k in names} or None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        headers = {"Authorization": f"Bearer {key}"}
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE
    return sent


# schemathesis.pytest.from_fixture needs pytest internals that pytest 9 removed, so the
# operations are driven here, one Hypothesis run per operation and generation mode.
@pytest.mark.parametrize(
    ("mode", "examples", "real_ids"),
    [(GenerationMode.POSITIVE, 15, False), (GenerationMode.NEGATIVE, 10, False),
     (GenerationMode.POSITIVE, 10, True), (GenerationMode.NEGATIVE, 5, True)],
    ids=["valid", "invalid", "valid-real-ids", "invalid-real-ids"],
)  # fmt: skip
def test_the_api_keeps_its_contract(
    api_schema: schemathesis.BaseSchema, served: tuple[str, str], mode: GenerationMode,
    examples: int, real_ids: bool,
) -> None:  # fmt: skip
    failures: dict[str, str] = {}
    sent = 0
    objects = _objects(*served) if real_ids else None
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    if real_ids:  # deleting the webhook last keeps it for the others
        operations = [op for op in operations if op.path_parameters]
        operations.sort(key=lambda op: op.method.upper() == "DELETE")
    for operation in operations:
        try:
            sent += _fuzz(operation, mode, served[1], examples, objects)
        except (Exception, BaseExceptionGroup) as exc:  # failed checks: report them all at once
            failures[operation.label] = str(exc)[:2000]
    print(f"schemathesis: {sent} {mode.value} requests over {len(operations)} operations")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert sent >= 30
