"""Regressions from the code review: each was a 500 or a wrong result on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from hookline.ids import utcnow
from hookline.store.retention import prune
from tests.support.hookline import Hookline, eventually
from tests.support.receiver import Answer, Receiver


async def test_concurrent_publishes_of_one_id_store_it_once(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    event = {"id": str(uuid.uuid4()), "type": "ORDER.FILLED", "object": {"n": 1}}
    answers = await asyncio.gather(*(acme.client.post("/events", json=event) for _ in range(12)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["sequence"] for a in answers}) == 1
    page = (await acme.client.get("/events")).json()
    assert page["meta"]["count"] == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/webhooks/%00", {}),
        ("GET", "/webhooks/not-a-uuid/packages", {}),
        ("GET", "/events/%00abc", {}),
        ("POST", "/webhooks", {"json": {"title": "a\x00b", "url": "https://example.com/h"}}),
        ("POST", "/webhooks", {"json": {"title": "a", "url": "https://example.com/h\x00"}}),
        ("GET", "/events", {"params": {"type": "\x00"}}),
        ("GET", "/events", {"params": {"category": "lower"}}),
        ("GET", "/events", {"params": {"created_after": "0001-01-01T00:00:00+01:00"}}),
        ("GET", "/events", {"params": {"created_before": "9999-12-31T23:59:59-01:00"}}),
        ("POST", "/events", {"json": {"type": "WEBHOOK.DISABLED", "object": {}}}),
    ],
)
async def test_bad_input_is_a_4xx_problem(
    hookline: Hookline, method: str, path: str, kwargs: dict[str, object]
) -> None:
    acme = await hookline.tenant("acme")
    answer = await acme.client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_disabled_webhooks_pending_package_does_not_pin_retention(
    hookline: Hookline, receiver: Receiver
) -> None:
    receiver.default("/hook", Answer(status=500))
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    old = "2020-01-01T00:00:00Z"
    await acme.publish(
        *({"type": "ORDER.FILLED", "object": {}, "created_at": old} for _ in range(5))
    )
    await receiver.wait_for(lambda: len(receiver.at("/hook")) >= 1, what="a failing attempt")
    patched = await acme.client.patch(f"/webhooks/{webhook['id']}", json={"enabled": False})
    assert patched.status_code == 200
    assert hookline.services is not None
    pruned = await prune(
        hookline.services.db, events_age=timedelta(days=30), history_age=timedelta(0),
        now=utcnow(), batch=100,
    )  # fmt: skip
    assert pruned.events == 5


async def test_a_worker_whose_leases_may_have_lapsed_starts_no_attempt(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    worker = hookline.worker
    assert worker is not None

    async def held() -> bool:
        return webhook["id"] in worker._runtimes

    await eventually(held, what="the webhook held by the worker")
    lease = hookline.settings.lease_duration.total_seconds()
    worker._renewed_at = time.monotonic() - lease  # as if renewals had failed for a lease
    await acme.publish({"type": "ORDER.FILLED", "object": {}, "created_at": "2020-01-01T00:00:00Z"})
    for _ in range(20):  # a few scheduling rounds: the package is due at once
        await asyncio.sleep(0.05)
    assert receiver.at("/hook") == []
    worker._renewed_at = time.monotonic()  # a renewal succeeded
    await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == 1, what="the delivery")
