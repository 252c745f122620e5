"""Tenant isolation over every operation of the API: another tenant's key can neither read nor
change the first tenant's objects (always 404, as if they did not exist).

The matrix is checked against the OpenAPI document, so a new route fails here until it is
classified below.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.hookline import Hookline, Tenant
from tests.support.receiver import Receiver

# (method, path template) -> request bodies / query strings the intruder tries
PER_OBJECT: dict[tuple[str, str], list[tuple[str, Any]]] = {
    ("get", "/webhooks/{webhook_id}"): [("", None)],
    ("patch", "/webhooks/{webhook_id}"): [
        ("", {"title": "pwned"}), ("", {"enabled": False}), ("", {"url": "http://evil.test/x"}),
    ],
    ("delete", "/webhooks/{webhook_id}"): [("", None)],
    ("post", "/webhooks/{webhook_id}/test"): [("", None), ("?wait=true", None)],
    ("get", "/webhooks/{webhook_id}/test"): [("", None)],
    ("get", "/webhooks/{webhook_id}/secret"): [("", None)],
    ("post", "/webhooks/{webhook_id}/secret/rotate"): [("", None)],
    ("get", "/webhooks/{webhook_id}/packages"): [("", None), ("?limit=1000", None)],
    ("get", "/webhooks/{webhook_id}/attempts"): [("", None), ("?offset=0", None)],
    ("post", "/webhooks/{webhook_id}/replay"): [
        ("", {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}), ("", {}),
    ],
    ("get", "/events/{event_id}"): [("", None)],
}  # fmt: skip
COLLECTIONS = {("get", "/webhooks"), ("post", "/webhooks"), ("get", "/events"), ("post", "/events")}
TENANT_INDEPENDENT = {
    ("get", "/auth/verify_keys"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


async def _operations(hookline: Hookline) -> set[tuple[str, str]]:
    document = (await hookline.client().get("/openapi.json")).json()
    methods = {"get", "post", "put", "patch", "delete"}
    return {(m, path) for path, item in document["paths"].items() for m in item if m in methods}


async def _setup(hookline: Hookline, receiver: Receiver) -> tuple[Tenant, Tenant, dict[str, Any]]:
    owner = await hookline.tenant(f"owner-{uuid.uuid4()}")
    intruder = await hookline.tenant(f"intruder-{uuid.uuid4()}")
    webhook = await owner.create_webhook(receiver.url("/owner"), title="owner's")
    [event] = await owner.publish({"type": "ORDER.FILLED", "object": {"secret": "owner"}})
    await receiver.wait_for(lambda: len(receiver.at("/owner")) == 1, what="the owner's delivery")
    ids = {"webhook_id": webhook["id"], "event_id": event["id"]}
    return owner, intruder, ids


async def _snapshot(owner: Tenant, ids: dict[str, Any]) -> dict[str, Any]:
    hook = f"/webhooks/{ids['webhook_id']}"
    return {
        "webhook": await owner.get(hook),
        "secret": await owner.get(f"{hook}/secret"),
        "packages": (await owner.get(f"{hook}/packages"))["meta"]["total_count"],
        "event": await owner.get(f"/events/{ids['event_id']}"),
    }


async def test_every_operation_is_in_the_matrix(hookline: Hookline) -> None:
    known = set(PER_OBJECT) | COLLECTIONS | TENANT_INDEPENDENT
    assert not await _operations(hookline) - known, "classify the new route in this matrix"


async def test_another_tenant_gets_404_for_every_object_route(
    hookline: Hookline, receiver: Receiver
) -> None:
    owner, intruder, ids = await _setup(hookline, receiver)
    before = await _snapshot(owner, ids)
    for method, template in sorted(await _operations(hookline) & set(PER_OBJECT)):
        path = template.format(**ids)
        for query, body in PER_OBJECT[(method, template)]:
            response = await intruder.client.request(method, path + query, json=body)
            assert response.status_code == 404, (method, path + query, response.text)
            assert "owner" not in response.text.replace(path, "")
    assert await _snapshot(owner, ids) == before
    assert len(receiver.at("/owner")) == 1  # no test package was sent for the intruder


async def test_collections_only_show_the_callers_objects(
    hookline: Hookline, receiver: Receiver
) -> None:
    owner, intruder, ids = await _setup(hookline, receiver)
    assert (await intruder.get("/webhooks"))["data"] == []
    assert (await intruder.get("/events"))["data"] == []
    assert (await intruder.get("/events", type="ORDER.FILLED", after=0))["data"] == []
    mine = await intruder.create_webhook(receiver.url("/intruder"))
    assert [w["id"] for w in (await owner.get("/webhooks"))["data"]] == [ids["webhook_id"]]
    assert mine["id"] != ids["webhook_id"]


async def test_publishing_another_tenants_event_id_stores_a_separate_event(
    hookline: Hookline, receiver: Receiver
) -> None:
    owner, intruder, ids = await _setup(hookline, receiver)
    event = {"id": ids["event_id"], "type": "ORDER.FILLED", "object": {"mine": True}}
    [stored] = await intruder.publish(event)
    assert stored["object"] == {"mine": True}
    assert (await owner.get(f"/events/{ids['event_id']}"))["object"] == {"secret": "owner"}
    assert (await intruder.get(f"/events/{ids['event_id']}"))["object"] == {"mine": True}


async def test_verify_keys_are_the_same_for_every_tenant(
    hookline: Hookline, receiver: Receiver
) -> None:
    owner, intruder, _ = await _setup(hookline, receiver)
    assert await owner.get("/auth/verify_keys") == await intruder.get("/auth/verify_keys")


async def test_idempotency_keys_do_not_leak_responses_between_tenants(
    hookline: Hookline, receiver: Receiver
) -> None:
    owner, intruder, _ = await _setup(hookline, receiver)
    headers = {"Idempotency-Key": "shared-key"}
    body = {"title": "t", "url": receiver.url("/x")}
    first = await owner.client.post("/webhooks", json=body, headers=headers)
    second = await intruder.client.post("/webhooks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
