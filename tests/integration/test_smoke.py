"""The basic loop: a webhook, a publish, a signed package at a real receiver."""

from __future__ import annotations

from tests.support.hookline import Hookline
from tests.support.receiver import Receiver


async def test_published_events_arrive_in_one_package(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url(), config={"delay": "1s"})
    stored = await acme.publish(
        {"type": "ORDER.FILLED", "object": {"n": 1}},
        {"type": "USER.CREATED", "object": {"n": 2}},
    )
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 2, what="2 events")
    [request] = receiver.at("/hook")
    assert [e["id"] for e in request.events] == [e["id"] for e in stored]
    assert {e["webhook_id"] for e in request.events} == {webhook["id"]}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Signature-Input"].startswith("sig1=")
    assert request.headers["webhook-signature"].startswith("v1,")
