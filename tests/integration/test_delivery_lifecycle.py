"""Disabling (410 Gone, failing too long), re-enabling, creating and deleting webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from hookline.config import Settings
from hookline.store.tables import attempts, packages, webhook_state
from tests.support.hookline import Hookline, Tenant, eventually, running
from tests.support.receiver import Answer, Receiver

SettingsFor = Callable[..., Settings]


def order_event(n: int) -> dict[str, Any]:
    return {"type": "ORDER.FILLED", "object": {"n": n}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def disabled(tenant: Tenant, webhook_id: str) -> dict[str, Any] | None:
    webhook = await tenant.get(f"/webhooks/{webhook_id}")
    return None if webhook["enabled"] else dict(webhook)


async def disabled_events(tenant: Tenant) -> list[dict[str, Any]]:
    found = (await tenant.get("/events", category="WEBHOOK"))["data"]
    return [e for e in found if e["type"] == "WEBHOOK.DISABLED"]


async def package_rows(hookline: Hookline, webhook_id: str) -> list[Any]:
    assert hookline.services is not None
    async with hookline.services.db.read() as conn:
        query = select(packages).where(packages.c.webhook_id == webhook_id)
        return list((await conn.execute(query.order_by(packages.c.id))).all())


async def attempt_rows(hookline: Hookline, webhook_id: str) -> list[Any]:
    assert hookline.services is not None
    async with hookline.services.db.read() as conn:
        query = select(attempts).where(attempts.c.webhook_id == webhook_id)
        return list((await conn.execute(query.order_by(attempts.c.id))).all())


async def test_410_gone_disables_the_webhook_and_tells_the_tenant(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    gone = await acme.create_webhook(receiver.url("/gone"), type=["ORDER"])
    await acme.create_webhook(receiver.url("/all"))
    receiver.default("/gone", Answer(410))
    stored = await acme.publish(order_event(1))
    await receiver.wait_for(
        lambda: any(e["type"] == "WEBHOOK.DISABLED" for e in receiver.delivered("/all")),
        what="WEBHOOK.DISABLED at the ALL webhook",
    )
    webhook = await eventually(lambda: disabled(acme, gone["id"]), what="disabled")
    assert "410" in webhook["disabled_reason"]
    [event] = await disabled_events(acme)
    assert event["object"]["webhook_id"] == gone["id"]
    assert ids(receiver.delivered("/all")) == [*ids(stored), event["id"]]
    [package] = (await acme.get(f"/webhooks/{gone['id']}/packages"))["data"]
    assert (package["status"], package["attempts"], package["last_status"]) == ("failed", 1, 410)
    more = await acme.publish(order_event(2))
    await receiver.wait_for(lambda: ids(receiver.delivered("/all"))[-1:] == ids(more), what="2")
    assert len(receiver.at("/gone")) == 1


async def test_a_webhook_failing_longer_than_disable_after_is_disabled(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    async with running(settings_for(disable_after="2s")) as hookline:
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(receiver.url())
        receiver.default("/hook", Answer(500))
        await acme.publish(order_event(1))
        found = await eventually(lambda: disabled(acme, webhook["id"]), what="disabled")
        [event] = await eventually(lambda: disabled_events(acme), what="WEBHOOK.DISABLED")
    assert "failing since" in found["disabled_reason"]
    assert event["object"]["webhook_id"] == webhook["id"]
    assert len(receiver.at("/hook")) >= 2
    assert all(r.answered == 500 for r in receiver.at("/hook"))


async def test_failing_since_survives_giving_up_a_package_and_opening_the_next(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    """Each package fails once and is given up while the next waits, so the statement that
    closes it also opens the next: that must keep failing_since (when failing began, which
    DISABLE_AFTER counts from), and a success must clear it."""
    async with running(settings_for(retry_max_attempts=1)) as hookline:
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(receiver.url(), config={"max_package_size": 100})
        receiver.default("/hook", Answer(500))
        await acme.publish(*(order_event(n) for n in range(4)))  # four one-event packages
        tries = await eventually(
            lambda: _at_least(attempt_rows(hookline, webhook["id"]), 4), what="4 attempts"
        )
        state = await eventually(
            lambda: _settled_state(hookline, webhook["id"]), what="the last package closed"
        )
        assert state.failing_since is not None
        assert state.failing_since < tries[-1].started_at  # from the first failure, not the last
        receiver.default("/hook", Answer(200))
        await acme.publish(order_event(9))
        await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="delivery")
        cleared = await eventually(
            lambda: _settled_state(hookline, webhook["id"], failing=False), what="cleared"
        )
        assert cleared.failing_since is None


async def _at_least(rows: Awaitable[list[Any]], count: int) -> list[Any]:
    found = await rows
    return found if len(found) >= count else []


async def _settled_state(hookline: Hookline, webhook_id: str, failing: bool = True) -> Any:
    assert hookline.services is not None
    async with hookline.services.db.read() as conn:
        query = select(webhook_state).where(webhook_state.c.webhook_id == webhook_id)
        row = (await conn.execute(query)).one()
    done = row.open_package_id is None and (row.failing_since is not None) == failing
    return row if done else None


async def test_events_published_while_disabled_are_not_delivered_after_re_enabling(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url())
    before = await acme.publish(order_event(1))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) == 1, what="first")
    path = f"/webhooks/{webhook['id']}"
    assert (await acme.client.patch(path, json={"enabled": False})).status_code == 200
    await acme.publish(order_event(2))
    assert (await acme.client.patch(path, json={"enabled": True})).status_code == 200
    after = await acme.publish(order_event(3))
    await receiver.wait_for(lambda: len(receiver.delivered("/hook")) >= 2, what="after")
    assert ids(receiver.delivered("/hook")) == ids(before + after)


async def test_a_new_webhook_only_gets_events_published_after_its_creation(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url("/old"))
    early = await acme.publish(order_event(1))
    await acme.create_webhook(receiver.url("/new"))
    late = await acme.publish(order_event(2))
    await receiver.wait_for(
        lambda: len(receiver.delivered("/old")) == 2 and len(receiver.delivered("/new")) >= 1,
        what="deliveries",
    )
    assert ids(receiver.delivered("/old")) == ids(early + late)
    assert ids(receiver.delivered("/new")) == ids(late)


async def test_deleting_a_webhook_drops_its_pending_package(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    doomed = await acme.create_webhook(receiver.url("/doomed"))
    await acme.create_webhook(receiver.url("/other"))
    receiver.default("/doomed", Answer(500))
    await acme.publish(order_event(1))
    await receiver.wait_for(lambda: len(receiver.at("/doomed")) == 1, what="first failure")
    assert (await acme.client.delete(f"/webhooks/{doomed['id']}")).status_code == 204
    [package] = await package_rows(hookline, doomed["id"])
    assert package.status == "dropped"
    # Events published now are delivered elsewhere only after the retry of the dropped package
    # would have been due (back-off 1 s, delay 1 s), and that retry never comes.
    more = await acme.publish(order_event(2))
    await receiver.wait_for(lambda: ids(receiver.delivered("/other"))[-1:] == ids(more), what="2")
    assert len(receiver.at("/doomed")) == 1


async def test_deleting_a_webhook_while_its_package_is_in_flight_keeps_it_dropped(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    doomed = await acme.create_webhook(receiver.url("/doomed"))
    receiver.default("/doomed", Answer(500, hang=1.0))
    await acme.publish(order_event(1))
    await receiver.wait_for(lambda: receiver.in_flight("/doomed") == 1, what="in flight")
    assert (await acme.client.delete(f"/webhooks/{doomed['id']}")).status_code == 204
    await receiver.wait_for(lambda: len(receiver.at("/doomed")) == 1, what="the answer")

    [attempt] = await eventually(lambda: attempt_rows(hookline, doomed["id"]), what="attempt")
    assert (attempt.status_code, attempt.number) == (500, 1)
    [package] = await package_rows(hookline, doomed["id"])
    assert package.status == "dropped"
    assert package.next_attempt_at is None
