"""Retention prunes old history and events, but never what a webhook may still send."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hookline.ids import utcnow
from hookline.store.retention import prune, uuid7_floor
from hookline.store.tables import attempts, events, packages
from tests.support.hookline import Hookline
from tests.support.receiver import Answer, Receiver

OLD = "2020-01-01T00:00:00Z"


async def _count(hookline: Hookline, table, *where) -> int:  # type: ignore[no-untyped-def]
    assert hookline.services is not None
    async with hookline.services.db.read() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(query)).scalar_one())


async def test_prune_keeps_what_a_webhook_still_needs(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    webhook = await acme.create_webhook(receiver.url(), config={"delay": "1s"})
    delivered = await acme.publish(
        *({"type": "ORDER.FILLED", "object": {"n": n}, "created_at": OLD} for n in range(10))
    )
    await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == 10, what="first 10")
    receiver.default("/hook", Answer(status=500))
    stuck = await acme.publish(
        *({"type": "ORDER.FILLED", "object": {"n": n}, "created_at": OLD} for n in range(5))
    )
    await receiver.wait_for(lambda: len(receiver.at("/hook")) >= 2, what="a failing attempt")
    assert hookline.services is not None

    pruning_started = utcnow()
    later = pruning_started + timedelta(days=31)
    pruned = await prune(
        hookline.services.db, events_age=timedelta(days=30), history_age=timedelta(days=30),
        now=later, batch=3,
    )  # fmt: skip

    assert pruned.events == 10  # in batches of 3: 3+3+3+1
    remaining = await _count(hookline, events, events.c.tenant_id == acme.id)
    assert remaining == 5
    page = (await acme.client.get("/events", params={"limit": 100})).json()["data"]
    assert [e["id"] for e in page] == [e["id"] for e in stuck]
    assert all(e["id"] not in {d["id"] for d in page} for e in delivered)
    # the finished package went, the pending one (still being retried) stays
    statuses = (await acme.client.get(f"/webhooks/{webhook['id']}/packages")).json()["data"]
    assert [p["status"] for p in statuses] == ["pending"]
    assert pruned.packages >= 1
    # every attempt made before pruning went (the worker keeps retrying meanwhile)
    assert pruned.attempts >= 1
    assert await _count(hookline, attempts, attempts.c.id < uuid7_floor(pruning_started)) == 0


async def test_nothing_is_pruned_inside_the_retention_window(
    hookline: Hookline, receiver: Receiver
) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url())
    await acme.publish(*({"type": "USER.CREATED", "object": {"n": n}} for n in range(4)))
    await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == 4, what="4 events")
    assert hookline.services is not None
    pruned = await prune(
        hookline.services.db, events_age=timedelta(days=30), history_age=timedelta(days=30),
        now=utcnow(), batch=100,
    )  # fmt: skip
    assert (pruned.events, pruned.packages, pruned.attempts) == (0, 0, 0)
    assert await _count(hookline, packages) == 1


async def test_zero_keeps_everything_forever(hookline: Hookline, receiver: Receiver) -> None:
    acme = await hookline.tenant("acme")
    await acme.create_webhook(receiver.url())
    await acme.publish({"type": "USER.CREATED", "object": {}, "created_at": OLD})
    await receiver.wait_for(lambda: len(receiver.acked["/hook"]) == 1, what="1 event")
    assert hookline.services is not None
    pruned = await prune(
        hookline.services.db, events_age=timedelta(0), history_age=timedelta(0),
        now=utcnow() + timedelta(days=3650), batch=100,
    )  # fmt: skip
    assert (pruned.events, pruned.packages, pruned.attempts) == (0, 0, 0)
