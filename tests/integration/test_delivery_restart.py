"""Delivery survives restarts: a crash may re-send a package, never lose one (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookline.config import Settings
from tests.support.hookline import Hookline
from tests.support.receiver import Answer, Receiver

SettingsFor = Callable[..., Settings]


def order_event(n: int) -> dict[str, Any]:
    return {"type": "ORDER.FILLED", "object": {"n": n}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def test_after_a_crash_the_same_package_is_resent_once_the_lease_expires(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    hookline = await Hookline(settings_for(lease_duration="5s")).start()
    try:
        acme = await hookline.tenant("acme")
        await acme.create_webhook(receiver.url())
        receiver.script("/hook", Answer(500), Answer(hang=2))
        first = await acme.publish(order_event(1), order_event(2))
        await receiver.wait_for(
            lambda: len(receiver.at("/hook")) == 1 and receiver.in_flight("/hook") == 1,
            what="a failure, then the retry in flight",
        )
        await hookline.crash()  # mid-request; keeps its leases until they run out
        await hookline.start()
        acme = acme.reconnect(hookline)
        await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 2, what="re-send")
        later = await acme.publish(order_event(3))
        await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 3, what="later")
    finally:
        await hookline.stop()
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [500, 0, 200, 200]  # 0: the crashed request
    assert len({r.package_id for r in requests[:3]}) == 1
    assert len({r.body for r in requests[:3]}) == 1
    assert ids(receiver.delivered("/hook")) == ids(first + later)


async def test_a_clean_restart_resumes_the_open_package(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url())
    receiver.script("/hook", Answer(500))
    first = await acme.publish(order_event(1), order_event(2))
    await receiver.wait_for(lambda: len(receiver.at("/hook")) == 1, what="first failure")
    await hookline.restart()
    acme = acme.reconnect(hookline)
    later = await acme.publish(order_event(3))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 3, what="everything")
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [500, 200, 200]
    assert requests[0].package_id == requests[1].package_id
    assert ids(receiver.delivered("/hook")) == ids(first + later)
