"""Operations endpoints, the OpenAPI document, test sends, secrets and verify keys."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.support.hookline import Hookline, Tenant, make_settings
from tests.support.receiver import Answer, Receiver

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hookline]:
    instance = await Hookline(make_settings(tmp_path_factory.mktemp("api_ops"))).start()
    yield instance
    await instance.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sink() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def acme(api: Hookline) -> Tenant:
    return await api.tenant(f"acme-{uuid.uuid4()}")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- health, readiness, metrics -----------------------------------------------------------


async def test_health_and_readiness(api: Hookline) -> None:
    client = api.client()
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert health.headers["request-id"] != ready.headers["request-id"]


async def test_metrics(api: Hookline, acme: Tenant) -> None:
    await acme.publish({"type": "USER.CREATED", "object": {}})
    response = await api.client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    published = [ln for ln in lines if ln.startswith("hookline_events_published_total ")]
    assert len(published) == 1
    assert float(published[0].split()[1]) >= 1
    for status in ("pending", "retrying"):
        assert any(
            ln.startswith(f'hookline_packages_by_status{{status="{status}"}}') for ln in lines
        )


# --- the OpenAPI document -----------------------------------------------------------------

SPEC_ROUTES = {
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("get", "/webhooks/{webhook_id}"),
    ("patch", "/webhooks/{webhook_id}"),
    ("delete", "/webhooks/{webhook_id}"),
    ("post", "/webhooks/{webhook_id}/test"),
    ("get", "/webhooks/{webhook_id}/test"),
    ("get", "/webhooks/{webhook_id}/secret"),
    ("post", "/webhooks/{webhook_id}/secret/rotate"),
    ("get", "/webhooks/{webhook_id}/packages"),
    ("get", "/webhooks/{webhook_id}/attempts"),
    ("get", "/auth/verify_keys"),
    ("post", "/events"),
    ("get", "/events"),
    ("get", "/events/{event_id}"),
}
REPLAY = ("post", "/webhooks/{webhook_id}/replay")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def openapi(api: Hookline) -> dict[str, Any]:
    response = await api.client().get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}


async def test_openapi_document(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    assert _operations(openapi) >= SPEC_ROUTES
    schemes = openapi["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes.values())
    for path, method in [
        ("/webhooks", "post"), ("/events", "post"), ("/webhooks/{webhook_id}", "get"),
    ]:  # fmt: skip
        operation = openapi["paths"][path][method]
        assert operation["security"], (method, path)
        for code in ("400", "401", "403"):
            content = operation["responses"][code]["content"]
            assert "application/problem+json" in content, (method, path, code)
    assert "404" in openapi["paths"]["/webhooks/{webhook_id}"]["get"]["responses"]
    problem = openapi["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(
        problem["properties"]
    )
    for ref in _refs(openapi):
        name = ref.removeprefix("#/components/schemas/")
        assert name in openapi["components"]["schemas"], ref


async def test_openapi_documents_the_outgoing_package(openapi: dict[str, Any]) -> None:
    [(_name, item)] = openapi["webhooks"].items()
    body = item["post"]["requestBody"]["content"]["application/json"]["schema"]
    package = openapi["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert package["required"] == ["payload"]
    item_ref = package["properties"]["payload"]["items"]["$ref"]
    event = openapi["components"]["schemas"][item_ref.rsplit("/", 1)[1]]
    assert set(event["required"]) == {"id", "created_at", "type", "object", "webhook_id"}


async def test_openapi_documents_the_publish_body(openapi: dict[str, Any]) -> None:
    body = openapi["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]
    refs = {r.rsplit("/", 1)[1] for r in _refs(body["schema"])}
    assert refs == {"EventIn", "EventBatchIn"}


@pytest.mark.xfail(strict=True, reason="MISSING: POST /webhooks/{id}/replay (SPEC section 2)")
async def test_openapi_has_the_replay_route(openapi: dict[str, Any]) -> None:
    assert REPLAY in _operations(openapi)


async def test_docs_page(api: Hookline) -> None:
    response = await api.client().get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# --- test sends ---------------------------------------------------------------------------


async def test_test_send_is_queued_and_arrives(acme: Tenant, sink: Receiver) -> None:
    path = f"/test-{uuid.uuid4()}"
    webhook = await acme.create_webhook(sink.url(path))
    response = await acme.client.post(f"/webhooks/{webhook['id']}/test")
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued == {"url": sink.url(path), "package_id": queued["package_id"]}
    await sink.wait_for(lambda: len(sink.at(path)) == 1, timeout=10, what="the test package")
    [request] = sink.at(path)
    assert request.package_id == queued["package_id"]
    [event] = request.events
    assert event["type"] == "WEBHOOK.TEST"
    assert event["webhook_id"] == webhook["id"]
    assert request.headers["Signature-Input"].startswith("sig1=")
    assert request.headers["webhook-signature"].startswith("v1,")


async def test_test_send_can_wait_for_the_answer(acme: Tenant, sink: Receiver) -> None:
    path = f"/wait-{uuid.uuid4()}"
    sink.script(path, Answer(status=201, headers={"X-Seen": "yes"}, body="thanks"))
    webhook = await acme.create_webhook(sink.url(path))
    response = await acme.client.post(f"/webhooks/{webhook['id']}/test", params={"wait": "true"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["url"] == sink.url(path)
    assert result["response"]["status"] == 201
    assert result["response"]["body"] == "thanks"
    headers = {k.lower(): v for k, v in result["response"]["headers"].items()}
    assert headers["x-seen"] == "yes"
    assert "error" not in result or result["error"] is None
    assert [r.package_id for r in sink.at(path)] == [result["package_id"]]

    again = await acme.client.get(f"/webhooks/{webhook['id']}/test")
    assert again.status_code == 200, again.text
    assert again.json()["response"]["status"] == 200
    assert again.json()["package_id"] != result["package_id"]
    assert len(sink.at(path)) == 2


async def test_test_send_to_a_closed_port_reports_the_error(acme: Tenant) -> None:
    webhook = await acme.create_webhook(f"http://127.0.0.1:{closed_port()}/gone")
    response = await acme.client.post(f"/webhooks/{webhook['id']}/test?wait=true")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["error"]
    assert result.get("response") is None
    attempts = (await acme.client.get(f"/webhooks/{webhook['id']}/attempts")).json()
    [attempt] = attempts["data"]
    assert attempt["status_code"] is None
    assert attempt["error"]
    packages = (await acme.client.get(f"/webhooks/{webhook['id']}/packages")).json()
    assert [(p["kind"], p["status"]) for p in packages["data"]] == [("test", "failed")]


async def test_test_sends_show_in_the_history(acme: Tenant, sink: Receiver) -> None:
    path = f"/history-{uuid.uuid4()}"
    sink.script(path, Answer(status=500, body="nope"))
    webhook = await acme.create_webhook(sink.url(path))
    failed = (await acme.client.get(f"/webhooks/{webhook['id']}/test")).json()
    assert failed["response"]["status"] == 500
    ok = (await acme.client.get(f"/webhooks/{webhook['id']}/test")).json()
    assert ok["response"]["status"] == 200

    packages = (await acme.client.get(f"/webhooks/{webhook['id']}/packages")).json()
    assert packages["meta"] == {"offset": 0, "limit": 100, "count": 2, "total_count": 2}
    newest, oldest = packages["data"]
    assert (newest["id"], oldest["id"]) == (ok["package_id"], failed["package_id"])
    assert {p["kind"] for p in packages["data"]} == {"test"}
    assert (newest["status"], oldest["status"]) == ("delivered", "failed")
    assert newest["attempts"] == 1
    assert newest["event_count"] == 1
    assert newest["last_status"] == 200

    attempts = (await acme.client.get(f"/webhooks/{webhook['id']}/attempts")).json()
    assert attempts["meta"]["total_count"] == 2
    assert [a["package_id"] for a in attempts["data"]] == [ok["package_id"], failed["package_id"]]
    assert {a["trigger"] for a in attempts["data"]} == {"test"}
    assert [a["status_code"] for a in attempts["data"]] == [200, 500]
    assert attempts["data"][1]["response_excerpt"] == "nope"
    assert attempts["data"][0]["url"] == sink.url(path)
    page = (await acme.client.get(f"/webhooks/{webhook['id']}/attempts?limit=1&offset=1")).json()
    assert [a["package_id"] for a in page["data"]] == [failed["package_id"]]


# --- secrets and verify keys --------------------------------------------------------------


async def test_secret_and_rotation(acme: Tenant, sink: Receiver) -> None:
    webhook = await acme.create_webhook(sink.url("/secret"))
    base = f"/webhooks/{webhook['id']}/secret"
    first = await acme.client.get(base)
    assert first.status_code == 200
    assert first.json()["secret"].startswith("whsec_")
    assert first.json()["previous"] == []
    assert (await acme.client.get(base)).json() == first.json()
    rotated = await acme.client.post(f"{base}/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != first.json()["secret"]
    assert rotated.json()["previous"] == [first.json()["secret"]]
    assert (await acme.client.get(base)).json() == rotated.json()
    twice = (await acme.client.post(f"{base}/rotate")).json()
    assert twice["previous"] == [rotated.json()["secret"], first.json()["secret"]]


async def test_verify_keys(api: Hookline, acme: Tenant) -> None:
    response = await acme.client.get("/auth/verify_keys")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    current = keys[0]
    assert current["kid"]
    assert current["alg"] == "ed25519"
    assert current["kty"] == "OKP"
    assert current["crv"] == "Ed25519"
    assert current["x"]
    assert not any("d" in key for key in keys)
    assert (await api.client().get("/auth/verify_keys")).status_code == 401
