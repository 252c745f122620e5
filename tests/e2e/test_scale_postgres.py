"""Many processes on one PostgreSQL: 2 API and 3 worker processes, 20 webhooks, thousands of
events, and one worker killed with SIGKILL mid-run. Every event arrives, per-webhook order
holds, and the only packages delivered twice are ones in flight at the kill."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import postgres, processes
from tests.support.receiver import Answer, Receiver

pytestmark = pytest.mark.postgres
TENANTS = 2
WEBHOOKS_PER_TENANT = 10
EVENTS_PER_TENANT = 1000
BATCH = 100
WORKER_READY = re.compile(r"worker running")


@pytest.fixture
def scale_env(postgres_url: str, postgres_template: str) -> Iterator[dict[str, str]]:
    name = postgres.create_database(postgres_url, postgres_template)
    yield {
        "HOOKLINE_DATABASE_URL": postgres.with_database(postgres_url, name),
        "HOOKLINE_SECRET_KEY": "scale-test-secret-key-0123456789",
        "HOOKLINE_ALLOW_INSECURE_TARGETS": "true",
        "HOOKLINE_REQUEST_TIMEOUT": "3s",
        "HOOKLINE_LEASE_DURATION": "6s",
        "HOOKLINE_RESYNC_INTERVAL": "5s",
    }
    postgres.drop_database(postgres_url, name)


async def _publish(client: httpx.AsyncClient, key: str, tenant: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, EVENTS_PER_TENANT, BATCH):
        events = [
            {"type": "ORDER.FILLED", "object": {"tenant": tenant, "n": n, "pad": "x" * 120}}
            for n in range(start, start + BATCH)
        ]
        response = await client.post(
            "/events", json={"events": events}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 201, response.text
        ids.extend(e["id"] for e in response.json()["events"])
    return ids


async def test_three_workers_two_apis_and_a_kill(scale_env: dict[str, str]) -> None:
    receiver = await Receiver().start()
    receiver.default("/hook", Answer(hang=0.01))
    started: list[Any] = []
    try:
        keys = [
            json.loads(processes.run_json(["tenants", "create", f"t{i}", "--json"], scale_env))
            for i in range(TENANTS)
        ]
        apis = [processes.start(["api", "--port", "0"], scale_env) for _ in range(2)]
        started.extend(apis)
        urls = [processes.wait_for_line(p, processes.LISTENING).group(1) for p in apis]
        workers = [processes.start(["worker"], scale_env) for _ in range(3)]
        started.extend(workers)
        for worker in workers:
            processes.wait_for_line(worker, WORKER_READY)
        clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]
        hooks: dict[str, int] = {}
        for tenant, key in enumerate(keys):
            for n in range(WEBHOOKS_PER_TENANT):
                path = f"/hook/{tenant}/{n}"
                receiver.default(path, Answer(hang=0.01))
                response = await clients[n % 2].post(
                    "/webhooks",
                    json={"title": path, "url": receiver.url(path),
                          "config": {"delay": "1s", "max_package_size": 2000}},
                    headers={"Authorization": f"Bearer {key['api_key']}"},
                )  # fmt: skip
                assert response.status_code == 201, response.text
                hooks[path] = tenant
        published = await asyncio.gather(
            *(_publish(clients[t % 2], keys[t]["api_key"], t) for t in range(TENANTS))
        )
        total = TENANTS * WEBHOOKS_PER_TENANT * EVENTS_PER_TENANT
        await receiver.wait_for(
            lambda: receiver.acked_total > total // 4,
            timeout=60, what="a quarter of the deliveries",
        )  # fmt: skip
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)

        def complete() -> bool:
            return all(len(receiver.acked[path]) == EVENTS_PER_TENANT for path in hooks)

        try:
            await receiver.wait_for(complete, timeout=120, what="every event at every webhook")
        except AssertionError:
            counts = {p: len(receiver.acked[p]) for p in hooks}
            raise AssertionError(f"delivered per webhook: {counts}") from None
        twice = {}
        for path, tenant in hooks.items():
            ids, twice[path] = receiver.once_each(path)
            assert ids == published[tenant], path
        assert all(count <= 1 for count in twice.values()), twice
        for client in clients:
            await client.aclose()
    finally:
        processes.stop_all(started)
        await receiver.stop()
