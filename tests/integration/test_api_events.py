"""``/events`` over HTTP: publish (one, many, idempotent), validation, the paginated log."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.hookline import Hookline, Tenant, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MAX_PER_PUBLISH = 5


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(body)
    assert body["status"] == status
    assert body["request_id"] == response.headers["request-id"]
    if field is not None:
        assert body.get("field") == field, body


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hookline]:
    directory = tmp_path_factory.mktemp("api_events")
    settings = make_settings(directory, max_events_per_publish=MAX_PER_PUBLISH)
    instance = await Hookline(settings).start(worker=False)
    yield instance
    await instance.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def acme(api: Hookline) -> Tenant:
    return await api.tenant(f"acme-{uuid.uuid4()}")


async def log_of(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await tenant.client.get("/events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


# --- publish ------------------------------------------------------------------------------


async def test_publish_one(acme: Tenant) -> None:
    response = await acme.client.post(
        "/events", json={"type": "ORDER.FILLED", "object": {"id": "o1", "qty": "1.5"}}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    event = response.json()
    assert set(event) == {"id", "sequence", "created_at", "type", "object"}
    assert str(uuid.UUID(event["id"])) == event["id"]
    assert event["sequence"] == 1
    assert RFC3339_Z.match(event["created_at"]), event["created_at"]
    assert event["type"] == "ORDER.FILLED"
    assert event["object"] == {"id": "o1", "qty": "1.5"}
    fetched = await acme.client.get(f"/events/{event['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == event


async def test_publish_keeps_given_id_and_created_at(acme: Tenant) -> None:
    event_id = str(uuid.uuid4())
    response = await acme.client.post(
        "/events",
        json={"id": event_id.upper(), "created_at": "2024-05-01T12:00:00+02:00",
              "type": "USER.CREATED", "object": {}},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["id"] == event_id
    assert response.json()["created_at"] == "2024-05-01T10:00:00.000000Z"


async def test_publish_batch(acme: Tenant) -> None:
    items = [
        {"type": "USER.CREATED", "object": {"n": 1}},
        {"type": "ORDER.NEW", "object": {"n": 2}},
        {"type": "ORDER.FILLED", "object": {"n": 3}},
    ]
    response = await acme.client.post("/events", json={"events": items})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert list(stored) == ["events"]
    assert [e["type"] for e in stored["events"]] == [i["type"] for i in items]
    assert [e["object"] for e in stored["events"]] == [i["object"] for i in items]
    assert [e["sequence"] for e in stored["events"]] == [1, 2, 3]
    assert len({e["id"] for e in stored["events"]}) == 3
    more = await acme.client.post("/events", json={"events": items[:1]})
    assert [e["sequence"] for e in more.json()["events"]] == [4]
    assert [e["id"] for e in await log_of(acme)] == [
        e["id"] for e in stored["events"] + more.json()["events"]
    ]


async def test_publish_is_idempotent_on_id(acme: Tenant) -> None:
    event_id = str(uuid.uuid4())
    first = await acme.client.post(
        "/events", json={"id": event_id, "type": "USER.CREATED", "object": {"v": 1}}
    )
    assert first.status_code == 201
    await acme.publish({"type": "USER.ACTIVATED", "object": {}})
    again = await acme.client.post(
        "/events", json={"id": event_id, "type": "USER.CREATED", "object": {"v": 2}}
    )
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    in_batch = await acme.publish(
        {"type": "ORDER.NEW", "object": {}}, {"id": event_id, "type": "USER.CREATED", "object": {}}
    )
    assert in_batch[1] == first.json()
    assert in_batch[0]["sequence"] == 3
    log = await log_of(acme)
    assert [e["sequence"] for e in log] == [1, 2, 3]
    assert [e["id"] for e in log].count(event_id) == 1


async def test_duplicate_ids_inside_one_batch_are_stored_once(acme: Tenant) -> None:
    event_id = str(uuid.uuid4())
    stored = await acme.publish(
        {"id": event_id, "type": "ORDER.NEW", "object": {"v": 1}},
        {"type": "ORDER.FILLED", "object": {}},
        {"id": event_id, "type": "ORDER.NEW", "object": {"v": 2}},
    )
    assert stored[0] == stored[2]
    assert stored[0]["object"] == {"v": 1}
    assert [e["sequence"] for e in stored] == [1, 2, 1]
    log = await log_of(acme)
    assert [(e["id"], e["sequence"]) for e in log] == [(event_id, 1), (stored[1]["id"], 2)]


async def test_ids_are_per_tenant(api: Hookline, acme: Tenant) -> None:
    event_id = str(uuid.uuid4())
    other = await api.tenant(f"other-{uuid.uuid4()}")
    mine = await acme.publish({"id": event_id, "type": "USER.CREATED", "object": {"t": "a"}})
    theirs = await other.publish({"id": event_id, "type": "USER.CREATED", "object": {"t": "b"}})
    assert mine[0]["object"] == {"t": "a"}
    assert theirs[0]["object"] == {"t": "b"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "ORDER.EXPLODED", "object": {}}, "type"),
        ({"type": "order.filled", "object": {}}, "type"),
        ({"type": "ORDER", "object": {}}, "type"),
        ({"type": 5, "object": {}}, "type"),
        ({"object": {}}, "type"),
        ({"type": "ORDER.FILLED"}, "object"),
        ({"type": "ORDER.FILLED", "object": [1, 2]}, "object"),
        ({"type": "ORDER.FILLED", "object": "x"}, "object"),
        ({"type": "ORDER.FILLED", "object": None}, "object"),
        ({"type": "ORDER.FILLED", "object": {}, "id": "not-a-uuid"}, "id"),
        ({"type": "ORDER.FILLED", "object": {}, "id": 12}, "id"),
        ({"type": "ORDER.FILLED", "object": {}, "created_at": "2024-05-01T12:00:00"}, "created_at"),
        ({"type": "ORDER.FILLED", "object": {}, "created_at": "yesterday"}, "created_at"),
        ({"type": "ORDER.FILLED", "object": {}, "created_at": 1714557600}, "created_at"),
        (
            {"type": "ORDER.FILLED", "object": {}, "created_at": "2999-01-01T00:00:00Z"},
            "created_at",
        ),
        ({"type": "ORDER.FILLED", "object": {}, "webhook_id": "x"}, "webhook_id"),
        ({"type": "ORDER.FILLED", "object": {}, "sequence": 1}, "sequence"),
        (
            {"events": [{"type": "ORDER.FILLED", "object": {}}, {"type": "NOPE.X", "object": {}}]},
            "events[1].type",
        ),
        ({"events": [{"type": "ORDER.FILLED", "object": {}, "extra": 1}]}, "events[0].extra"),
        ({"events": [{"type": "ORDER.FILLED", "object": 3}]}, "events[0].object"),
        ({"events": [{"type": "ORDER.FILLED", "object": {}, "id": "x"}]}, "events[0].id"),
        ({"events": ["ORDER.FILLED"]}, "events[0]"),
        ({"events": []}, "events"),
        ({"events": {"type": "ORDER.FILLED", "object": {}}}, "events"),
        ({"events": [{"type": "ORDER.FILLED", "object": {}}], "more": 1}, "events"),
        ({"events": [{"type": "ORDER.FILLED", "object": {}}] * (MAX_PER_PUBLISH + 1)}, "events"),
        ([{"type": "ORDER.FILLED", "object": {}}], "body"),
        ("ORDER.FILLED", "body"),
        ({"type": "ORDER.FILLED", "object": {"big": "x" * 262_144}}, "object"),
        # 131,077 characters, but 262,145 bytes of JSON: the limit counts bytes
        ({"type": "ORDER.FILLED", "object": {"big": "é" * 131_068}}, "object"),
    ],
)
async def test_publish_rejects_bad_events(acme: Tenant, body: Any, field: str) -> None:
    response = await acme.client.post("/events", json=body)
    assert_problem(response, 400, field)
    assert await log_of(acme) == []


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b'{"type": "ORDER.FILLED",}'])
async def test_publish_rejects_a_body_that_is_not_json(acme: Tenant, content: bytes) -> None:
    response = await acme.client.post(
        "/events", content=content, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "body")


async def test_a_full_batch_is_accepted(acme: Tenant) -> None:
    items = [{"type": "ORDER.FILLED", "object": {"n": n}} for n in range(MAX_PER_PUBLISH)]
    stored = await acme.publish(*items)
    assert [e["sequence"] for e in stored] == list(range(1, MAX_PER_PUBLISH + 1))


async def test_a_bad_event_rejects_the_whole_batch(acme: Tenant) -> None:
    response = await acme.client.post(
        "/events",
        json={"events": [{"type": "ORDER.FILLED", "object": {}}, {"type": "X.Y", "object": {}}]},
    )
    assert_problem(response, 400, "events[1].type")
    assert await log_of(acme) == []


# --- the log ------------------------------------------------------------------------------


async def test_log_pages_with_a_cursor(acme: Tenant) -> None:
    stored = await acme.publish(*[{"type": "ORDER.NEW", "object": {"n": n}} for n in range(5)])
    first = (await acme.client.get("/events", params={"limit": 2})).json()
    assert first["meta"] == {"after": 0, "limit": 2, "count": 2, "next_after": 2}
    assert [e["sequence"] for e in first["data"]] == [1, 2]
    assert first["data"] == stored[:2]
    second = (await acme.client.get("/events", params={"limit": 2, "after": 2})).json()
    assert second["meta"] == {"after": 2, "limit": 2, "count": 2, "next_after": 4}
    assert second["data"] == stored[2:4]
    third = (await acme.client.get("/events", params={"limit": 2, "after": 4})).json()
    assert third["meta"] == {"after": 4, "limit": 2, "count": 1, "next_after": 5}
    end = (await acme.client.get("/events", params={"limit": 2, "after": 5})).json()
    assert end["meta"]["count"] == 0
    assert end["data"] == []
    everything = (await acme.client.get("/events")).json()
    assert everything["meta"] == {"after": 0, "limit": 100, "count": 5, "next_after": 5}


async def test_log_filters_by_type_and_category(acme: Tenant) -> None:
    await acme.publish(
        {"type": "USER.CREATED", "object": {}},
        {"type": "ORDER.NEW", "object": {}},
        {"type": "ORDER.FILLED", "object": {}},
        {"type": "USER_CHECK.PASSED", "object": {}},
        {"type": "ORDER.FILLED", "object": {}},
    )

    async def seqs(**params: Any) -> list[int]:
        return [e["sequence"] for e in await log_of(acme, **params)]

    assert await seqs(type="ORDER.FILLED") == [3, 5]
    assert await seqs(type=["ORDER.FILLED", "USER.CREATED"]) == [1, 3, 5]
    assert await seqs(type="ORDER.FILLED,USER.CREATED") == [1, 3, 5]
    assert await seqs(category="ORDER") == [2, 3, 5]
    assert await seqs(category="USER") == [1]
    assert await seqs(category="USER,USER_CHECK") == [1, 4]
    assert await seqs(category="ORDER", after=3) == [5]
    assert await seqs(category="ORDER", type="USER.CREATED") == []
    page = (await acme.client.get("/events", params={"category": "ORDER", "limit": 1})).json()
    assert page["meta"]["next_after"] == 2


async def test_log_filters_by_time(acme: Tenant) -> None:
    stamps = ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]
    await acme.publish(*[{"type": "REPORT.CREATED", "object": {}, "created_at": t} for t in stamps])

    async def seqs(**params: Any) -> list[int]:
        return [e["sequence"] for e in await log_of(acme, **params)]

    assert await seqs(created_after="2024-01-01T12:00:00Z") == [2, 3]
    assert await seqs(created_before="2024-01-02T12:00:00Z") == [1, 2]
    assert await seqs(
        created_after="2024-01-01T12:00:00Z", created_before="2024-01-02T12:00:00Z"
    ) == [2]
    assert await seqs(created_after="2024-01-02T01:00:00+02:00") == [2, 3]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": "x"}, "after"),
        ({"after": 2**64}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"created_after": "2024-01-01T00:00:00"}, "created_after"),
        ({"created_before": "2024-01-01T00:00:00"}, "created_before"),
        ({"created_after": "soon"}, "created_after"),
    ],
)
async def test_log_rejects_bad_query(acme: Tenant, params: dict[str, Any], field: str) -> None:
    assert_problem(await acme.client.get("/events", params=params), 400, field)


async def test_the_largest_cursor_is_fine(acme: Tenant) -> None:
    response = await acme.client.get("/events", params={"after": 2**63 - 1})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


async def test_events_are_per_tenant(api: Hookline, acme: Tenant) -> None:
    [mine] = await acme.publish({"type": "USER.CREATED", "object": {"who": "acme"}})
    other = await api.tenant(f"other-{uuid.uuid4()}")
    [theirs] = await other.publish({"type": "USER.CREATED", "object": {"who": "other"}})
    assert theirs["sequence"] == 1
    assert_problem(await other.client.get(f"/events/{mine['id']}"), 404)
    assert_problem(await acme.client.get(f"/events/{theirs['id']}"), 404)
    assert [e["id"] for e in await log_of(other)] == [theirs["id"]]
    assert (await acme.client.get(f"/events/{mine['id'].upper()}")).json() == mine
    assert_problem(await acme.client.get("/events/not-an-id"), 404)
    assert_problem(await acme.client.get(f"/events/{uuid.uuid4()}"), 404)


async def test_event_scopes(api: Hookline, acme: Tenant) -> None:
    reader = api.client(await api.key_for(acme.id, ["events:read"]))
    publisher = api.client(await api.key_for(acme.id, ["events:publish"]))
    body = {"type": "USER.CREATED", "object": {}}
    assert_problem(await reader.post("/events", json=body), 403)
    published = await publisher.post("/events", json=body)
    assert published.status_code == 201
    assert_problem(await publisher.get("/events"), 403)
    assert_problem(await publisher.get(f"/events/{published.json()['id']}"), 403)
    assert (await reader.get(f"/events/{published.json()['id']}")).status_code == 200
    assert_problem(await api.client().post("/events", json=body), 401)
