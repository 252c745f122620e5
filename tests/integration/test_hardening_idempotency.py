"""``Idempotency-Key`` on every POST (SPEC section 6), on SQLite and PostgreSQL, with two API
"processes" (two apps with their own services) sharing one database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from hookline.api.idempotency import sweep_expired
from hookline.ids import utcnow
from hookline.store.tables import idempotency_keys
from tests.conftest import SettingsFor
from tests.support.hookline import Hookline, Tenant, running
from tests.support.receiver import Answer, Receiver

HOOK = {"title": "idempotent", "url": "http://127.0.0.1:9/hook"}
EVENT = {"type": "USER.CREATED", "object": {"id": "u1"}}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def count(hookline: Hookline, path: str, tenant: Tenant) -> int:
    return int((await tenant.get(path))["meta"]["total_count"])


async def test_a_replay_returns_the_first_response_with_its_headers(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    headers = key()
    first = await acme.client.post("/webhooks", json=HOOK, headers=headers)
    again = await acme.client.post("/webhooks", json=HOOK, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["request-id"] != first.headers["request-id"]
    assert await count(hookline, "/webhooks", acme) == 1


async def test_publish_is_idempotent_by_key(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    headers = key()
    body = {"events": [EVENT, EVENT]}
    first = await acme.client.post("/events", json=body, headers=headers)
    again = await acme.client.post("/events", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert len((await acme.get("/events"))["data"]) == 2


async def test_a_different_body_or_path_is_422(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    headers = key()
    assert (await acme.client.post("/webhooks", json=HOOK, headers=headers)).status_code == 201
    other = await acme.client.post("/webhooks", json={**HOOK, "title": "x"}, headers=headers)
    assert_problem(other, 422)
    elsewhere = await acme.client.post("/events", json=EVENT, headers=headers)
    assert_problem(elsewhere, 422)
    assert await count(hookline, "/webhooks", acme) == 1


async def test_keys_belong_to_one_tenant(hookline: Hookline) -> None:
    acme, other = await hookline.tenant("acme"), await hookline.tenant("other")
    headers = key()
    mine = await acme.client.post("/webhooks", json=HOOK, headers=headers)
    theirs = await other.client.post("/webhooks", json=HOOK, headers=headers)
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


async def test_a_4xx_answer_is_replayed_too(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    headers = key()
    bad = {**HOOK, "url": "ftp://x"}
    first = await acme.client.post("/webhooks", json=bad, headers=headers)
    again = await acme.client.post("/webhooks", json=bad, headers=headers)
    assert_problem(first, 400)
    assert (again.status_code, again.json()) == (400, first.json())
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_answer_before_the_request_ran_does_not_use_the_key(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    reader = hookline.client(await hookline.key_for(acme.id, ["webhooks:read"]))
    headers = key()
    assert_problem(await reader.post("/webhooks", json=HOOK, headers=headers), 403)
    done = await acme.client.post("/webhooks", json=HOOK, headers=headers)
    assert done.status_code == 201, done.text


async def test_a_500_releases_the_key_so_a_retry_runs(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    boom = hookline.client(acme.key)
    boom._transport = httpx.ASGITransport(app=hookline.app, raise_app_exceptions=False)
    headers = key()
    original = hookline.services.db.write if hookline.services else None
    assert original is not None
    calls = {"n": 0}

    def failing_once() -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # 1: the claim; 2: the handler's insert
            raise RuntimeError("database went away")
        return original()

    hookline.services.db.write = failing_once  # type: ignore[union-attr, method-assign]
    try:
        failed = await boom.post("/webhooks", json=HOOK, headers=headers)
    finally:
        hookline.services.db.write = original  # type: ignore[union-attr, method-assign]
    assert_problem(failed, 500)
    retried = await acme.client.post("/webhooks", json=HOOK, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers


async def test_bad_keys_are_400(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    for value in (b"x" * 256, "caf\u00e9".encode()):
        response = await acme.client.post(
            "/webhooks", json=HOOK, headers={"Idempotency-Key": value}
        )
        assert assert_problem(response, 400)["field"] == "Idempotency-Key"
    ok = await acme.client.post("/webhooks", json=HOOK, headers={"Idempotency-Key": "x" * 255})
    assert ok.status_code == 201


async def test_other_methods_ignore_the_header(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    hook = await acme.create_webhook("http://127.0.0.1:9/hook")
    headers = key()
    for title in ("a", "b"):
        patched = await acme.client.patch(
            f"/webhooks/{hook['id']}", json={"title": title}, headers=headers
        )
        assert patched.json()["title"] == title


async def test_a_duplicate_while_the_first_runs_is_409_in_another_process(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    receiver.default("/slow", Answer(hang=1.5))
    async with running(settings_for()) as one, running(settings_for()) as two:
        acme = await one.tenant("acme")
        hook = await acme.create_webhook(receiver.url("/slow"))
        path, headers = f"/webhooks/{hook['id']}/test?wait=true", key()
        first = asyncio.create_task(acme.client.post(path, headers=headers))
        await receiver.wait_for(lambda: receiver.in_flight("/slow") == 1, what="the first test")
        elsewhere = acme.reconnect(two)
        assert_problem(await elsewhere.client.post(path, headers=headers), 409)
        done = await first
        assert done.status_code == 200, done.text
        replayed = await elsewhere.client.post(path, headers=headers)
        assert (replayed.status_code, replayed.json()) == (200, done.json())
        assert len(receiver.at("/slow")) == 1


async def test_racing_duplicates_run_once(settings_for: SettingsFor) -> None:
    async with running(settings_for()) as one, running(settings_for()) as two:
        acme = await one.tenant("acme")
        clients = [acme.client, acme.reconnect(two).client] * 4
        headers = key()
        answers = await asyncio.gather(
            *(c.post("/webhooks", json=HOOK, headers=headers) for c in clients)
        )
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}, statuses
        assert 201 in statuses
        created = {a.json()["id"] for a in answers if a.status_code == 201}
        assert len(created) == 1
        assert await count(one, "/webhooks", acme) == 1


async def test_expired_keys_are_swept_and_can_be_reused(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    headers = key()
    assert (await acme.client.post("/webhooks", json=HOOK, headers=headers)).status_code == 201
    await acme.client.post("/webhooks", json=HOOK, headers=key())
    services = hookline.services
    assert services is not None
    async with services.db.write() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == headers["Idempotency-Key"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    again = await acme.client.post("/webhooks", json={**HOOK, "title": "new"}, headers=headers)
    assert again.status_code == 201, again.text
    async with services.db.write() as conn:
        await conn.execute(update(idempotency_keys).values(expires_at=utcnow()))
    assert await sweep_expired(services) == 2
    async with services.db.read() as conn:
        left = (await conn.execute(select(func.count()).select_from(idempotency_keys))).scalar()
    assert left == 0
