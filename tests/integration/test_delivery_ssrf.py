"""The SSRF guard end to end: registration rules and the sender's checks at connect time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hookline.config import Settings
from hookline.delivery.sender import Sender
from tests.support.hookline import eventually, running
from tests.support.receiver import Receiver

SettingsFor = Callable[..., Settings]


class Listener:
    """A bare TCP listener on loopback that counts connections (and never answers)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    started = await Listener().start()
    yield started
    await started.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/in",
        "https://127.0.0.1/in",
        "https://[::1]/in",
        "https://10.0.0.8/in",
        "https://169.254.169.254/latest",
        "https://localhost/in",
    ],
)
async def test_an_insecure_target_cannot_be_registered(settings_for: SettingsFor, url: str) -> None:
    async with running(settings_for(allow_insecure_targets=False)) as hookline:
        acme = await hookline.tenant("acme")
        response = await acme.client.post("/webhooks", json={"title": "t", "url": url})
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400


async def test_the_sender_refuses_a_loopback_ip_literal(
    settings_for: SettingsFor, listener: Listener
) -> None:
    sender = Sender(settings_for(allow_insecure_targets=False))
    try:
        result = await sender.post(f"https://127.0.0.1:{listener.port}/in", b"{}", {})
        mapped = await sender.post(f"https://[::ffff:127.0.0.1]:{listener.port}/in", b"{}", {})
    finally:
        await sender.close()
    assert result.status is None and result.error and "refused" in result.error
    assert mapped.status is None and mapped.error and "refused" in mapped.error
    assert listener.connections == 0


@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_the_sender_refuses_a_name_that_resolves_to_loopback(
    settings_for: SettingsFor, listener: Listener, scheme: str
) -> None:
    sender = Sender(settings_for(allow_insecure_targets=False))
    try:
        result = await sender.post(f"{scheme}://localhost:{listener.port}/in", b"{}", {})
    finally:
        await sender.close()
    assert result.status is None
    assert result.error and result.error.startswith("refused") and "forbidden" in result.error
    assert listener.connections == 0


async def test_the_worker_refuses_a_registered_name_that_now_resolves_to_loopback(
    settings_for: SettingsFor, receiver: Receiver
) -> None:
    """Like DNS rebinding: the URL passed registration, the guard still holds at connect time."""
    async with running(settings_for()) as hookline:  # registered in development mode
        acme = await hookline.tenant("acme")
        webhook = await acme.create_webhook(f"http://localhost:{receiver.port}/hook")
    async with running(settings_for(allow_insecure_targets=False)) as hookline:
        acme = acme.reconnect(hookline)
        await acme.publish({"type": "ORDER.FILLED", "object": {"n": 1}})

        async def refused() -> list[dict[str, Any]]:
            found = (await acme.get(f"/webhooks/{webhook['id']}/attempts"))["data"]
            return [a for a in found if (a["error"] or "").startswith("refused")]

        [attempt] = await eventually(refused, what="a refused attempt")
    assert attempt["status_code"] is None
    assert receiver.requests == []


async def test_the_development_switch_lets_loopback_through(
    settings_for: SettingsFor, listener: Listener
) -> None:
    sender = Sender(settings_for(allow_insecure_targets=True))
    try:
        result = await sender.post(f"http://localhost:{listener.port}/in", b"{}", {})
    finally:
        await sender.close()
    assert result.status is None  # the listener hangs up without answering
    assert listener.connections >= 1  # but the connection was made: the guard was off
