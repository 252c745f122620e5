"""Egress controls end to end: ``HOOKLINE_ALLOWED_SUBNETS`` reaches the sender, allow-listed
private targets are delivered to with the guard on, the rest stays refused, redirects are not
followed, response bodies are read only up to the cap, and rebinding DNS answers are re-checked
on every connection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookline.config import Settings
from hookline.delivery.guard import BlockedAddress, GuardedResolver
from hookline.delivery.sender import Sender
from hookline.services import open_services
from hookline.store.migrate import migrate
from tests.conftest import SettingsFor
from tests.support.hookline import eventually, running
from tests.support.receiver import Answer, Receiver


def test_allowed_subnets_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_ALLOWED_SUBNETS", "10.20.0.0/16, fd00:1::/64,192.168.7.7")
    assert Settings().allowed_subnets == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00:1::/64"),
        ipaddress.ip_network("192.168.7.7/32"),
    )
    monkeypatch.setenv("HOOKLINE_ALLOWED_SUBNETS", "10.20.0.1/16")
    with pytest.raises(ValueError, match="allowed_subnets"):
        Settings()


async def test_the_services_hand_the_subnets_to_the_sender(settings_for: SettingsFor) -> None:
    settings = settings_for(allowed_subnets="127.0.0.0/8")
    await asyncio.to_thread(migrate, settings.database_url)
    services = await open_services(settings)
    try:
        assert services.sender._allowed == (ipaddress.ip_network("127.0.0.0/8"),)
    finally:
        await services.close()


async def _attempts(acme: Any, webhook_id: str) -> list[dict[str, Any]]:
    return list((await acme.get(f"/webhooks/{webhook_id}/attempts"))["data"])


async def test_an_allow_listed_private_target_is_delivered_to(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    async with running(settings_for()) as hookline:  # registered in development mode
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(f"http://localhost:{receiver.port}/in")
    guarded = settings_for(allow_insecure_targets=False, allowed_subnets="127.0.0.0/8,::1/128")
    async with running(guarded) as hookline:
        acme = acme.reconnect(hookline)
        await acme.publish({"type": "ORDER.FILLED", "object": {"n": 1}})
        await receiver.wait_for(lambda: len(receiver.at("/in")) == 1, what="the delivery")
    async with running(settings_for(allow_insecure_targets=False)) as hookline:
        acme = acme.reconnect(hookline)
        await acme.publish({"type": "ORDER.FILLED", "object": {"n": 2}})

        async def refused() -> list[dict[str, Any]]:
            found = await _attempts(acme, webhook["id"])
            return [a for a in found if (a["error"] or "").startswith("refused")]

        await eventually(refused, what="a refused attempt")
    assert len(receiver.at("/in")) == 1


async def test_redirects_are_not_followed_and_bodies_are_capped(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    receiver.default("/redirect", Answer(302, {"Location": receiver.url("/elsewhere")}))
    receiver.default("/big", Answer(200, body="x" * 100_000))
    settings = settings_for(
        allow_insecure_targets=False, allowed_subnets="127.0.0.0/8", response_excerpt_bytes=64
    )
    sender = Sender(settings, allowed=settings.allowed_subnets)
    try:
        moved = await sender.post(receiver.url("/redirect"), b"{}", {})
        big = await sender.post(receiver.url("/big"), b"{}", {})
    finally:
        await sender.close()
    assert moved.status == 302 and not moved.ok
    assert receiver.at("/elsewhere") == []
    assert big.status == 200 and len(big.excerpt) == 64


async def test_cookies_a_target_sets_are_never_sent_anywhere(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    """One session posts for every tenant: a cookie one endpoint sets must not reach another
    tenant's endpoint on the same host, nor come back to its own (nobody asked for state)."""
    receiver.default("/a", Answer(200, {"Set-Cookie": "session=tenant-a; Path=/"}))
    sender = Sender(settings_for())
    try:
        for path in ("/a", "/a", "/b"):
            sent = await sender.post(f"http://localhost:{receiver.port}{path}", b"{}", {})
            assert sent.ok
    finally:
        await sender.close()
    [_, again], [other] = receiver.at("/a"), receiver.at("/b")
    assert "Cookie" not in again.headers and "Cookie" not in other.headers


class Rebinding(AbstractResolver):
    """Answers with a public address first, then with a hostile one (DNS rebinding)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers.pop(0)
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "hostile",
    ["127.0.0.1", "10.0.0.5", "169.254.169.254", "100.64.0.1", "::ffff:10.0.0.5",
     "2002:a00:5::1", "64:ff9b::a00:5", "fd00:ec2::254", "224.0.0.1", "240.0.0.1"],
)  # fmt: skip
async def test_a_rebinding_answer_is_refused_on_the_next_connection(hostile: str) -> None:
    resolver = GuardedResolver(Rebinding("93.184.216.34", hostile))
    assert [a["host"] for a in await resolver.resolve("hooks.example.com", 443)] == [
        "93.184.216.34"
    ]
    with pytest.raises(BlockedAddress):
        await resolver.resolve("hooks.example.com", 443)


async def test_an_allow_listed_subnet_admits_only_itself() -> None:
    allowed = (ipaddress.ip_network("10.20.0.0/16"),)
    resolver = GuardedResolver(Rebinding("10.20.3.4", "10.21.0.1", "::ffff:10.20.3.4"), allowed)
    assert (await resolver.resolve("internal.corp", 443))[0]["host"] == "10.20.3.4"
    with pytest.raises(BlockedAddress):
        await resolver.resolve("internal.corp", 443)
    assert (await resolver.resolve("internal.corp", 443))[0]["host"] == "::ffff:10.20.3.4"


async def test_a_response_header_that_is_not_utf8_is_recorded_not_fatal(
    hookline: Any,
) -> None:
    """Header bytes that are not UTF-8 (here Latin-1 ``café``) reach us as lone surrogates,
    which orjson refuses to encode. They are stored as U+FFFD; the attempt is recorded and
    the package settled, instead of the write failing and the package being re-sent."""
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        requests.append(await reader.readexactly(length))
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(f"http://127.0.0.1:{port}/in")
        await acme.publish({"type": "ORDER.FILLED", "object": {"n": 1}})
        [attempt] = await eventually(
            lambda: _attempts(acme, webhook["id"]), what="a recorded attempt"
        )
        packages = (await acme.get(f"/webhooks/{webhook['id']}/packages"))["data"]
    finally:
        server.close()
        await server.wait_closed()
    assert attempt["status_code"] == 200
    assert attempt["response_headers"]["x-name"] == "caf\ufffd"
    assert [p["status"] for p in packages] == ["delivered"]
    assert len(requests) == 1
