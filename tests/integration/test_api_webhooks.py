"""``/webhooks`` over HTTP: create, validate, list, get, patch, delete, tenants, scopes, auth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from hookline.store import tenants as tenant_store
from tests.support.hookline import Hookline, Tenant, make_settings

GOOD = {"title": "orders", "url": "https://hooks.example.com/in"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (naming ``field`` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"].startswith("urn:hookline:problem:")
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["request-id"]
    if field is not None:
        assert body.get("field") == field, body
    assert "Traceback" not in response.text
    return body


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hookline]:
    """One Hookline (no delivery worker) for the module; every test gets fresh tenants."""
    directory = tmp_path_factory.mktemp("api_webhooks")
    instance = await Hookline(make_settings(directory)).start(worker=False)
    yield instance
    await instance.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def acme(api: Hookline) -> Tenant:
    return await api.tenant(f"acme-{uuid.uuid4()}")


async def create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return await tenant.create_webhook(**{**GOOD, **fields})


# --- create -------------------------------------------------------------------------------


async def test_create_applies_the_defaults(acme: Tenant) -> None:
    response = await acme.client.post("/webhooks", json=GOOD)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    created = response.json()
    assert set(created) >= {"id", "created_at", "updated_at"}
    assert created["title"] == "orders"
    assert created["url"] == "https://hooks.example.com/in"
    assert created["type"] == ["ALL"]
    assert created["exclude_type"] == []
    assert created["enabled"] is True
    assert created["config"] == {"delay": "1s", "max_package_size": 10240}
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("Z") or created["created_at"].endswith("+00:00")


async def test_create_keeps_what_was_given(acme: Tenant) -> None:
    body = {
        **GOOD,
        "type": ["ALL"],
        "exclude_type": ["USER", "REPORT"],
        "enabled": False,
        "config": {"delay": "5m", "max_package_size": 100},
    }
    created = await acme.create_webhook(**body)
    for key in ("type", "exclude_type", "enabled", "config"):
        assert created[key] == body[key]
    again = await acme.client.get(f"/webhooks/{created['id']}")
    assert again.status_code == 200
    assert again.json() == created


LONG_URL = "https://hooks.example.com/" + "a" * 975  # 1001 characters


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "secret": "x"}, "secret"),
        ({**GOOD, "config": {"delay": "1s", "retries": 3}}, "config.retries"),
        ({**GOOD, "title": ""}, "title"),
        ({**GOOD, "title": "t" * 101}, "title"),
        ({**GOOD, "title": 5}, "title"),
        ({**GOOD, "title": "   "}, "title"),
        ({"url": GOOD["url"]}, "title"),
        ({"title": "x"}, "url"),
        ({**GOOD, "url": "https://user:pw@hooks.example.com/in"}, "url"),
        ({**GOOD, "url": "https://hooks.example.com/in#frag"}, "url"),
        ({**GOOD, "url": LONG_URL}, "url"),
        ({**GOOD, "url": "ftp://hooks.example.com/in"}, "url"),
        ({**GOOD, "url": 7}, "url"),
        ({**GOOD, "type": ["NOPE"]}, "type"),
        ({**GOOD, "type": ["ALL", "ORDER"]}, "type"),
        ({**GOOD, "type": []}, "type"),
        ({**GOOD, "type": "ALL"}, "type"),
        ({**GOOD, "type": ["ORDER"], "exclude_type": ["USER"]}, "exclude_type"),
        ({**GOOD, "exclude_type": ["NOPE"]}, "exclude_type"),
        ({**GOOD, "enabled": "yes"}, "enabled"),
        ({**GOOD, "config": {"delay": "0s"}}, "config.delay"),
        ({**GOOD, "config": {"delay": "100s"}}, "config.delay"),
        ({**GOOD, "config": {"delay": "1h"}}, "config.delay"),
        ({**GOOD, "config": {"delay": 5}}, "config.delay"),
        ({**GOOD, "config": {"max_package_size": 99}}, "config.max_package_size"),
        ({**GOOD, "config": {"max_package_size": 1_048_577}}, "config.max_package_size"),
        ({**GOOD, "config": {"max_package_size": "10"}}, "config.max_package_size"),
        ({**GOOD, "config": "fast"}, "config"),
        ([GOOD], "body"),
        ("just a string", "body"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    acme: Tenant, body: Any, field: str
) -> None:
    response = await acme.client.post("/webhooks", json=body)
    assert_problem(response, 400, field)
    listed = await acme.client.get("/webhooks")
    assert listed.json()["meta"]["total_count"] == 0


@pytest.mark.parametrize(
    "content", [b"{not json", b"", b'{"title": "x", "url": "https://a.example.com/"']
)
async def test_create_rejects_a_body_that_is_not_json(acme: Tenant, content: bytes) -> None:
    response = await acme.client.post(
        "/webhooks", content=content, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "body")


PRODUCTION_REJECTS = [
    "http://hooks.example.com/in",
    "https://127.0.0.1/in",
    "https://10.0.0.1/in",
    "https://[::1]/in",
    "https://localhost/in",
    "https://user@hooks.example.com/in",
    "https://hooks.example.com/in#x",
]


async def test_production_rules_for_urls(tmp_path: Path) -> None:
    strict = await Hookline(make_settings(tmp_path, allow_insecure_targets=False)).start(
        worker=False
    )
    try:
        tenant = await strict.tenant("acme")
        ok = await tenant.client.post("/webhooks", json=GOOD)
        assert ok.status_code == 201, ok.text
        for url in PRODUCTION_REJECTS:
            response = await tenant.client.post("/webhooks", json={**GOOD, "url": url})
            assert_problem(response, 400, "url")
            patch = await tenant.client.patch(f"/webhooks/{ok.json()['id']}", json={"url": url})
            assert_problem(patch, 400, "url")
        listed = (await tenant.client.get("/webhooks")).json()
        assert listed["meta"]["total_count"] == 1
        assert listed["data"][0]["url"] == GOOD["url"]
    finally:
        await strict.stop()


async def test_dev_mode_allows_http_loopback(acme: Tenant) -> None:
    created = await create(acme, url="http://127.0.0.1:9/hook")
    assert created["url"] == "http://127.0.0.1:9/hook"


# --- list ---------------------------------------------------------------------------------


async def _three(acme: Tenant) -> list[dict[str, Any]]:
    made = []
    for title, url, enabled in (
        ("bravo", "https://c.example.com/", True),
        ("alpha", "https://b.example.com/", False),
        ("charlie", "https://a.example.com/", True),
    ):
        made.append(await create(acme, title=title, url=url, enabled=enabled))
        await asyncio.sleep(0.002)  # distinct created_at values
    # updated_at order differs from created_at order: touch the first one last.
    touched = await acme.client.patch(f"/webhooks/{made[0]['id']}", json={"title": "bravo"})
    assert touched.status_code == 200
    made[0] = touched.json()
    return made


async def test_list_meta_and_default_order(acme: Tenant) -> None:
    made = await _three(acme)
    response = await acme.client.get("/webhooks")
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {
        "offset": 0, "limit": 100, "count": 3, "total_count": 3,
        "sort": "created_at", "order": "ASC",
    }  # fmt: skip
    assert [w["id"] for w in body["data"]] == [w["id"] for w in made]
    assert body["data"] == made


@pytest.mark.parametrize("sort", ["created_at", "updated_at", "title", "url", "enabled"])
@pytest.mark.parametrize("order", ["ASC", "DESC"])
async def test_list_sorts(acme: Tenant, sort: str, order: str) -> None:
    made = await _three(acme)
    response = await acme.client.get("/webhooks", params={"sort": sort, "order": order})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["sort"] == sort
    assert body["meta"]["order"] == order
    # created_at order is the tie-breaker of equal keys (enabled) within this fixture.
    expected = sorted(made, key=lambda w: (w[sort], made.index(w)), reverse=order == "DESC")
    if sort == "enabled":
        got = [w["enabled"] for w in body["data"]]
        assert got == sorted(got, reverse=order == "DESC")
    else:
        assert [w["title"] for w in body["data"]] == [w["title"] for w in expected]


async def test_list_pages(acme: Tenant) -> None:
    made = await _three(acme)
    page = (await acme.client.get("/webhooks", params={"offset": 1, "limit": 1})).json()
    assert page["meta"] == {
        "offset": 1, "limit": 1, "count": 1, "total_count": 3,
        "sort": "created_at", "order": "ASC",
    }  # fmt: skip
    assert [w["id"] for w in page["data"]] == [made[1]["id"]]
    empty = (await acme.client.get("/webhooks", params={"limit": 0})).json()
    assert empty["data"] == []
    assert empty["meta"]["count"] == 0
    assert empty["meta"]["total_count"] == 3
    past = (await acme.client.get("/webhooks", params={"offset": 10})).json()
    assert past["data"] == []
    assert past["meta"]["total_count"] == 3
    top = (await acme.client.get("/webhooks", params={"limit": 1000})).json()
    assert top["meta"]["count"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "id"}, "sort"),
        ({"sort": "secret"}, "sort"),
        ({"order": "UP"}, "order"),
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_list_rejects_bad_query(acme: Tenant, params: dict[str, Any], field: str) -> None:
    response = await acme.client.get("/webhooks", params=params)
    assert_problem(response, 400, field)


# --- get, patch, delete -------------------------------------------------------------------


async def test_get_unknown_is_404(acme: Tenant) -> None:
    response = await acme.client.get("/webhooks/0190b3f0-0000-7000-8000-000000000000")
    assert_problem(response, 404)
    response = await acme.client.get("/webhooks/not-a-uuid")
    assert_problem(response, 404)


async def test_patch_title_only(acme: Tenant) -> None:
    created = await create(acme, type=["ORDER"], config={"delay": "7s", "max_package_size": 500})
    await asyncio.sleep(0.002)
    response = await acme.client.patch(f"/webhooks/{created['id']}", json={"title": "renamed"})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["title"] == "renamed"
    unchanged = {k: v for k, v in created.items() if k not in ("title", "updated_at")}
    assert {k: v for k, v in patched.items() if k not in ("title", "updated_at")} == unchanged
    assert patched["updated_at"] > created["updated_at"]
    assert (await acme.client.get(f"/webhooks/{created['id']}")).json() == patched


async def test_patch_config_delay_keeps_the_size(acme: Tenant) -> None:
    created = await create(acme, config={"delay": "2s", "max_package_size": 4096})
    response = await acme.client.patch(
        f"/webhooks/{created['id']}", json={"config": {"delay": "30s"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["config"] == {"delay": "30s", "max_package_size": 4096}


async def test_patch_every_field(acme: Tenant) -> None:
    created = await create(acme)
    change = {
        "title": "t2", "url": "https://other.example.com/x", "type": ["ORDER", "USER"],
        "exclude_type": [], "enabled": False, "config": {"delay": "1m", "max_package_size": 100},
    }  # fmt: skip
    response = await acme.client.patch(f"/webhooks/{created['id']}", json=change)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in change} == change
    empty = await acme.client.patch(f"/webhooks/{created['id']}", json={})
    assert empty.status_code == 200
    assert {k: empty.json()[k] for k in change} == change


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"url": None}, "url"),
        ({"type": None}, "type"),
        ({"exclude_type": None}, "exclude_type"),
        ({"enabled": None}, "enabled"),
        ({"config": {"delay": None}}, "config.delay"),
        ({"config": {"max_package_size": None}}, "config.max_package_size"),
        ({"id": "0190b3f0-0000-7000-8000-000000000000"}, "id"),
        ({"created_at": "2024-01-01T00:00:00Z"}, "created_at"),
        ({"colour": "red"}, "colour"),
        ({"config": {"colour": "red"}}, "config.colour"),
        ({"title": ""}, "title"),
        ({"config": {"delay": "0s"}}, "config.delay"),
        ({"type": ["ALL", "USER"]}, "type"),
        ({"exclude_type": ["USER"], "type": ["ORDER"]}, "exclude_type"),
        ([], "body"),
    ],
)
async def test_patch_rejects_bad_input(acme: Tenant, body: Any, field: str) -> None:
    created = await create(acme)
    response = await acme.client.patch(f"/webhooks/{created['id']}", json=body)
    assert_problem(response, 400, field)
    assert (await acme.client.get(f"/webhooks/{created['id']}")).json() == created


async def test_patch_rejects_null_config(acme: Tenant) -> None:
    created = await create(acme)
    response = await acme.client.patch(f"/webhooks/{created['id']}", json={"config": None})
    assert_problem(response, 400, "config")


async def test_patch_keeps_exclusions_consistent(acme: Tenant) -> None:
    created = await create(acme, exclude_type=["USER"])
    response = await acme.client.patch(f"/webhooks/{created['id']}", json={"type": ["ORDER"]})
    assert_problem(response, 400, "exclude_type")
    both = await acme.client.patch(
        f"/webhooks/{created['id']}", json={"type": ["ORDER"], "exclude_type": []}
    )
    assert both.status_code == 200, both.text
    assert both.json()["type"] == ["ORDER"]


async def test_delete(acme: Tenant) -> None:
    keep = await create(acme, title="keep")
    gone = await create(acme, title="gone")
    response = await acme.client.delete(f"/webhooks/{gone['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert "request-id" in response.headers
    assert_problem(await acme.client.get(f"/webhooks/{gone['id']}"), 404)
    assert_problem(await acme.client.delete(f"/webhooks/{gone['id']}"), 404)
    assert_problem(await acme.client.patch(f"/webhooks/{gone['id']}", json={"title": "x"}), 404)
    listed = (await acme.client.get("/webhooks")).json()
    assert [w["id"] for w in listed["data"]] == [keep["id"]]
    assert listed["meta"]["total_count"] == 1


async def test_idempotency_key_replays_the_first_response(acme: Tenant) -> None:
    headers = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = await acme.client.post("/webhooks", json=GOOD, headers=headers)
    assert first.status_code == 201
    again = await acme.client.post("/webhooks", json=GOOD, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    other = await acme.client.post("/webhooks", json={**GOOD, "title": "x"}, headers=headers)
    assert_problem(other, 422)
    assert (await acme.client.get("/webhooks")).json()["meta"]["total_count"] == 1


# --- tenants, scopes, authentication ------------------------------------------------------


async def test_tenants_never_see_each_others_webhooks(api: Hookline, acme: Tenant) -> None:
    theirs = await create(acme)
    other = await api.tenant(f"other-{uuid.uuid4()}")
    mine = await create(other, title="mine")
    base = f"/webhooks/{theirs['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"title": "pwned"}),
        ("DELETE", base, None),
        ("POST", f"{base}/test", None),
        ("POST", f"{base}/test?wait=true", None),
        ("GET", f"{base}/test", None),
        ("GET", f"{base}/secret", None),
        ("POST", f"{base}/secret/rotate", None),
        ("GET", f"{base}/packages", None),
        ("GET", f"{base}/attempts", None),
    ]:
        response = await other.client.request(method, path, json=body)
        assert_problem(response, 404)
    for sort in ("created_at", "title"):
        listed = (await other.client.get("/webhooks", params={"sort": sort})).json()
        assert [w["id"] for w in listed["data"]] == [mine["id"]]
        assert listed["meta"]["total_count"] == 1
    # acme's webhook is untouched and its history holds no test package
    assert (await acme.client.get(base)).json() == theirs
    packages = (await acme.client.get(f"{base}/packages")).json()
    assert packages["meta"]["total_count"] == 0


async def test_read_scope_cannot_change_webhooks(api: Hookline, acme: Tenant) -> None:
    created = await create(acme)
    reader = api.client(await api.key_for(acme.id, ["webhooks:read"]))
    assert (await reader.get("/webhooks")).status_code == 200
    assert (await reader.get(f"/webhooks/{created['id']}")).status_code == 200
    assert (await reader.get(f"/webhooks/{created['id']}/packages")).status_code == 200
    assert (await reader.get(f"/webhooks/{created['id']}/attempts")).status_code == 200
    assert (await reader.get("/auth/verify_keys")).status_code == 200
    for method, path, body in [
        ("POST", "/webhooks", GOOD),
        ("PATCH", f"/webhooks/{created['id']}", {"title": "x"}),
        ("DELETE", f"/webhooks/{created['id']}", None),
        ("POST", f"/webhooks/{created['id']}/test", None),
        ("GET", f"/webhooks/{created['id']}/secret", None),
        ("POST", f"/webhooks/{created['id']}/secret/rotate", None),
    ]:
        problem = assert_problem(await reader.request(method, path, json=body), 403)
        assert "webhooks:admin" in problem["detail"]
    assert (await acme.client.get(f"/webhooks/{created['id']}")).json() == created


async def test_publish_scope_cannot_read_webhooks(api: Hookline, acme: Tenant) -> None:
    publisher = api.client(await api.key_for(acme.id, ["events:publish"]))
    assert_problem(await publisher.get("/webhooks"), 403)
    assert_problem(await publisher.get("/auth/verify_keys"), 403)
    assert_problem(await publisher.post("/webhooks", json=GOOD), 403)
    assert_problem(await publisher.get("/events"), 403)
    published = await publisher.post("/events", json={"type": "USER.CREATED", "object": {}})
    assert published.status_code == 201, published.text


async def _revoked_key(api: Hookline, tenant_id: str) -> str:
    assert api.services is not None
    async with api.services.db.write() as conn:
        key_id, key = await tenant_store.create_key(conn, tenant_id, scopes=["webhooks:read"])
        await tenant_store.revoke_key(conn, key_id)
    return key


async def test_requests_without_a_valid_key_are_401(api: Hookline, acme: Tenant) -> None:
    revoked = await _revoked_key(api, acme.id)
    forged = acme.key[:-4] + ("AAAA" if not acme.key.endswith("AAAA") else "BBBB")
    for headers in [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer hk_x_y"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"Basic {acme.key}"},
        {"Authorization": acme.key},
    ]:
        client = api.client()
        for method, path in [("GET", "/webhooks"), ("POST", "/webhooks"), ("GET", "/events")]:
            response = await client.request(method, path, json=GOOD, headers=headers)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_a_revoked_key_stops_working(api: Hookline, acme: Tenant) -> None:
    assert api.services is not None
    async with api.services.db.write() as conn:
        key_id, key = await tenant_store.create_key(conn, acme.id, scopes=["webhooks:read"])
    client = api.client(key)
    assert (await client.get("/webhooks")).status_code == 200
    async with api.services.db.write() as conn:
        await tenant_store.revoke_key(conn, key_id)
    deadline = asyncio.get_running_loop().time() + 10
    while (await client.get("/webhooks")).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "revoked key still accepted"
        await asyncio.sleep(0.2)
    assert_problem(await client.get("/webhooks"), 401)


# --- request ids and problems everywhere --------------------------------------------------


async def test_every_response_has_a_request_id(api: Hookline, acme: Tenant) -> None:
    anonymous = api.client()
    created = await acme.client.post("/webhooks", json=GOOD)
    responses = [
        created,
        await acme.client.get("/webhooks"),
        await acme.client.delete(f"/webhooks/{created.json()['id']}"),
        await anonymous.get("/healthz"),
        await anonymous.get("/webhooks"),
        await acme.client.post("/webhooks", json={}),
    ]
    ids = [r.headers["request-id"] for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)
    unknown = await acme.client.get("/no/such/route")
    assert_problem(unknown, 404)
    wrong_method = await acme.client.put("/webhooks")
    assert_problem(wrong_method, 405)


async def test_a_sane_incoming_request_id_is_echoed(acme: Tenant) -> None:
    mine = "client-req-0001"
    response = await acme.client.post("/webhooks", json={}, headers={"request-id": mine})
    assert response.headers["request-id"] == mine
    assert assert_problem(response, 400)["request_id"] == mine
    odd = await acme.client.get("/webhooks", headers={"request-id": "bad id\twith spaces"})
    assert odd.headers["request-id"] != "bad id\twith spaces"
    assert len(odd.headers["request-id"]) >= 8


async def test_an_unexpected_error_is_a_500_problem_with_request_id(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hookline.api import problems
    from hookline.api import webhooks as routes

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    logged: list[str] = []

    class Log:
        def exception(self, message: str, **fields: Any) -> None:
            logged.append(message)

    monkeypatch.setattr(routes.store, "list_webhooks_for_tenant", broken)
    monkeypatch.setattr(problems, "log", Log())  # the rich traceback costs seconds to render
    transport = httpx.ASGITransport(app=acme.client._transport.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hookline.test",
        headers={"Authorization": f"Bearer {acme.key}"},
    ) as client:  # fmt: skip
        response = await client.get("/webhooks")
    problem = assert_problem(response, 500)
    assert "secret internals" not in response.text
    assert problem["request_id"]
    assert logged == ["unhandled error"]
