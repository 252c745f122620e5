"""Retries re-send the same package; what counts as a failure; Retry-After; retry limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookline import metrics
from hookline.config import Settings
from tests.support.hookline import Hookline, Tenant, eventually, running
from tests.support.receiver import Answer, Receiver

SettingsFor = Callable[..., Settings]


def order_event(n: int) -> dict[str, Any]:
    return {"type": "ORDER.FILLED", "object": {"n": n}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def attempts_of(tenant: Tenant, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """The webhook's attempts, oldest first, once ``count`` of them are recorded."""

    async def recorded() -> list[dict[str, Any]]:
        found = (await tenant.get(f"/webhooks/{webhook_id}/attempts"))["data"]
        return list(reversed(found)) if len(found) >= count else []

    return await eventually(recorded, what=f"{count} attempts recorded")


async def packages_of(tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    """The webhook's packages, oldest first."""
    return list(reversed((await tenant.get(f"/webhooks/{webhook_id}/packages"))["data"]))


_COUNTED = {
    ("hookline_attempts_total", "outcome", "5xx"): 2,
    ("hookline_attempts_total", "outcome", "2xx"): 1,
    ("hookline_packages_total", "result", "delivered"): 1,
    ("hookline_packages_total", "result", "failed"): 0,
    ("hookline_events_delivered_total", "", ""): 2,
}


def _counts() -> dict[tuple[str, str, str], float]:
    """This process's delivery counters (the test's worker runs in it)."""
    return {
        key: metrics.REGISTRY.get_sample_value(key[0], {key[1]: key[2]} if key[1] else {}) or 0.0
        for key in _COUNTED
    }


async def test_a_retry_resends_the_identical_package(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    before = _counts()
    receiver.script("/hook", Answer(500), Answer(500))
    stored = await acme.publish(order_event(1), order_event(2))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 2, what="delivery")
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [500, 500, 200]
    assert len({r.package_id for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    assert ids(requests[0].events) == ids(stored)
    attempts = await attempts_of(acme, webhook["id"], 3)
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert {a["package_id"] for a in attempts} == {requests[0].package_id}
    [package] = await packages_of(acme, webhook["id"])
    assert package["id"] == requests[0].package_id
    assert (package["status"], package["attempts"]) == ("delivered", 3)

    async def counted() -> bool:  # each attempt counts itself once its outcome is committed
        return {k: v - before[k] for k, v in _counts().items()} == _COUNTED

    await eventually(counted, what="the attempts counted by outcome, the package as delivered")


async def test_a_redirect_is_a_failure_and_is_not_followed(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    receiver.script("/hook", Answer(302, headers={"Location": receiver.url("/elsewhere")}))
    await acme.publish(order_event(1))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="delivery")
    assert receiver.at("/elsewhere") == []
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [302, 200]
    assert requests[0].package_id == requests[1].package_id
    attempts = await attempts_of(acme, webhook["id"], 2)
    assert [a["status_code"] for a in attempts] == [302, 200]


async def test_a_timeout_is_a_recorded_failure_and_retried(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    async with running(settings_for(request_timeout="1s")) as hookline:
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(receiver.url())
        receiver.script("/hook", Answer(hang=2.5))
        await acme.publish(order_event(1))
        await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="delivery")
        attempts = await attempts_of(acme, webhook["id"], 2)
    assert attempts[0]["status_code"] is None
    assert "timeout" in attempts[0]["error"].lower()
    assert attempts[1]["status_code"] == 200
    assert len({a["package_id"] for a in attempts}) == 1


async def test_429_honours_retry_after(hookline: Hookline, receiver: Receiver) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    receiver.script("/hook", Answer(429, headers={"Retry-After": "1"}))
    await acme.publish(order_event(1))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="delivery")
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [429, 200]
    assert requests[0].body == requests[1].body
    attempts = await attempts_of(acme, webhook["id"], 2)
    assert [a["status_code"] for a in attempts] == [429, 200]


async def test_a_package_that_exhausts_the_retry_limit_fails_and_the_queue_moves_on(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    async with running(settings_for(retry_max_attempts=2)) as hookline:
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(receiver.url())
        receiver.default("/hook", Answer(500))
        first = await acme.publish(order_event(1))
        await receiver.wait_for(lambda: len(receiver.at("/hook")) == 1, what="first attempt")
        later = await acme.publish(order_event(2), order_event(3))  # queues behind package 1
        await receiver.wait_for(lambda: len(receiver.at("/hook")) == 2, what="second attempt")
        receiver.default("/hook", Answer(200))
        await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 2, what="the rest")
        packages = await eventually(
            lambda: _settled(acme, webhook["id"], 2), what="both packages settled"
        )
    failed, delivered = packages
    assert (failed["status"], failed["attempts"], failed["event_ids"]) == ("failed", 2, ids(first))
    assert (delivered["status"], delivered["event_ids"]) == ("delivered", ids(later))
    assert ids(receiver.delivered("/hook")) == ids(later)
    assert [r.answered for r in receiver.at("/hook")] == [500, 500, 200]


async def _settled(tenant: Tenant, webhook_id: str, count: int) -> list[dict[str, Any]]:
    packages = await packages_of(tenant, webhook_id)
    done = len(packages) == count and all(p["status"] != "pending" for p in packages)
    return packages if done else []
