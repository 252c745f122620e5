"""A failing package blocks its own webhook's queue, and only that one (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookline.config import Settings
from tests.support.hookline import Hookline, running
from tests.support.receiver import Answer, Receiver

SettingsFor = Callable[..., Settings]


def order_event(n: int) -> dict[str, Any]:
    return {"type": "ORDER.FILLED", "object": {"n": n}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def test_a_failing_package_blocks_the_ones_behind_it_until_it_succeeds(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url())
    receiver.script("/hook", Answer(500), Answer(500))
    first = await acme.publish(order_event(1), order_event(2))
    await receiver.wait_for(lambda: len(receiver.at("/hook")) == 1, what="first failure")
    later = await acme.publish(*(order_event(n) for n in range(3, 6)))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 5, what="all events")
    requests = receiver.at("/hook")
    assert [r.answered for r in requests] == [500, 500, 200, 200]
    assert [ids(r.events) for r in requests[:3]] == [ids(first)] * 3
    assert ids(requests[3].events) == ids(later)
    assert ids(receiver.delivered("/hook")) == ids(first + later)
    assert receiver.max_in_flight["/hook"] == 1


async def test_a_hanging_endpoint_does_not_slow_other_webhooks(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    async with running(settings_for(request_timeout="20s")) as hookline:
        acme, other = await hookline.tenant("acme"), await hookline.tenant("other")
        await acme.create_webhook(receiver.url("/a"))
        await acme.create_webhook(receiver.url("/b"))
        await other.create_webhook(receiver.url("/c"))
        receiver.default("/a", Answer(500, hang=25))
        await acme.publish(order_event(0))
        await receiver.wait_for(lambda: receiver.in_flight("/a") == 1, what="/a hanging")
        for n in range(1, 3):  # two rounds, each delivered while /a still hangs
            mine = await acme.publish(order_event(n))
            theirs = await other.publish(order_event(n))
            await receiver.wait_for(
                lambda mine=mine, theirs=theirs: (
                    ids(receiver.delivered("/b"))[-1:] == ids(mine)
                    and ids(receiver.delivered("/c"))[-1:] == ids(theirs)
                ),
                what=f"round {n} at /b and /c",
            )
            assert receiver.in_flight("/a") == 1
        assert receiver.at("/a") == []  # its one attempt has not even been answered
        assert len(receiver.delivered("/b")) == 3
        assert len(receiver.delivered("/c")) == 2
        await receiver.stop()  # end /a's hanging request before the worker's stop grace
