"""Input limits (body, URL, headers, events) and per-tenant rate limits: always a clear 4xx
problem document, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hookline.api.ratelimit import TokenBuckets
from tests.conftest import SettingsFor
from tests.support.hookline import Hookline, running


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["request-id"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def order(i: int) -> dict[str, Any]:
    """A typical ORDER.FILLED event (about 500 bytes)."""
    return {
        "type": "ORDER.FILLED",
        "object": {
            "id": f"8a7c1b9e-0000-4000-8000-{i:012d}", "user_id": "0f9b3e4c-1111-4222-8333-4444",
            "account_id": "5c6d7e8f-1111-4222-8333-555555555555", "instrument_id": "US0378331005",
            "side": "BUY", "quantity": "12.5", "price": {"amount": "187.34", "currency": "EUR"},
            "status": "FILLED", "created_at": "2025-01-01T10:00:00Z",
            "updated_at": "2025-01-01T10:00:01Z", "notes": "x" * 120,
        },
    }  # fmt: skip


async def test_a_declared_body_over_the_limit_is_413(settings_for: SettingsFor) -> None:
    async with running(settings_for(max_body_bytes=2048)) as hookline:
        acme = await hookline.tenant("acme")
        big = {"type": "USER.CREATED", "object": {"pad": "x" * 4000}}
        assert_problem(await acme.client.post("/events", json=big), 413)
        ok = await acme.client.post("/events", json={"type": "USER.CREATED", "object": {}})
        assert ok.status_code == 201


async def test_a_streamed_body_over_the_limit_is_413(settings_for: SettingsFor) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "USER.CREATED", "object": {"pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    async with running(settings_for(max_body_bytes=2048)) as hookline:
        acme = await hookline.tenant("acme")
        response = await acme.client.post("/events", content=chunks())
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)


async def test_a_1000_event_batch_fits_the_default_limit(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    response = await acme.client.post("/events", json={"events": [order(i) for i in range(1000)]})
    assert response.status_code == 201, response.text[:300]
    assert len(response.request.content) > 400_000


async def test_too_many_events_and_too_large_objects_are_400(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    many = await acme.client.post("/events", json={"events": [order(1)] * 1001})
    assert assert_problem(many, 400)["field"] == "events"
    huge = {"type": "USER.CREATED", "object": {"pad": "x" * 300_000}}
    assert assert_problem(await acme.client.post("/events", json=huge), 400)["field"]


async def test_a_long_url_is_414_and_large_headers_431(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    assert_problem(await acme.client.get("/events", params={"type": "A" * 9000}), 414)
    assert_problem(await acme.client.get("/webhooks", headers={"x-pad": "y" * 17000}), 431)
    many = {f"x-h{i}": "1" for i in range(120)}
    assert_problem(await acme.client.get("/webhooks", headers=many), 431)


async def test_a_bad_content_length_is_400(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    request = acme.client.build_request("POST", "/events", content=b"{}")
    request.headers["content-length"] = "nope"
    response = await acme.client.send(request)
    assert assert_problem(response, 400)["field"] == "Content-Length"


async def test_odd_authorization_headers_are_401_not_500(hookline: Hookline) -> None:
    client = hookline.client()
    for value in (b"Bearer", b"Bearer ", b"bearer hk_", b"Bearer hk_a_b", b"Basic x", b"\xff\xfe"):
        response = await client.get("/webhooks", headers={"Authorization": value})
        assert_problem(response, 401)


async def test_odd_host_headers_are_not_500(hookline: Hookline) -> None:
    acme = await hookline.tenant("acme")
    for host in ("exa[mple", "[::1", "a b", ""):
        response = await acme.client.get("/webhooks/nope", headers={"Host": host})
        assert_problem(response, 404)
        assert response.json()["instance"] == "/webhooks/nope"


async def test_the_rate_limit_is_per_tenant_with_retry_after(settings_for: SettingsFor) -> None:
    async with running(settings_for(rate_limit=0.01, rate_limit_burst=3)) as hookline:
        acme, other = await hookline.tenant("acme"), await hookline.tenant("other")
        for _ in range(3):
            assert (await acme.client.get("/webhooks")).status_code == 200
        limited = await acme.client.get("/webhooks")
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert (await other.client.get("/webhooks")).status_code == 200
        assert (await hookline.client().get("/healthz")).status_code == 200


def test_token_buckets_refill_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 1]
    now[0] += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") == 1
    assert buckets.take("b") == 0
    now[0] += 100
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 1]


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 0), (5.0, 0), (0.5, 0), (10.0, 50)])
def test_token_bucket_defaults(rate: float, burst: int) -> None:
    buckets = TokenBuckets(rate, burst)
    assert buckets.enabled == (rate > 0)
    assert buckets.burst == (burst or max(1, 2 * rate))
