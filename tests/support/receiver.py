"""A real HTTP receiver on loopback that tests can script: succeed, fail, hang, redirect, 410, 429.

Every request is recorded with its arrival time, headers and body. Scripted answers are taken
in order per path; when a path's script runs out, its default answer is used (200 unless set).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    """One scripted answer. ``hang`` seconds of silence simulate a timeout."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    hang: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int  # the status sent; 0 when the client had gone (timed out) before the answer
    started: float = 0.0  # when the request arrived (``at`` is when it was answered)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.json["payload"])

    @property
    def package_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Start with ``await Receiver().start()``; ``url(path)`` gives the address to register."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self._defaults: dict[str, Answer] = {}
        self._changed = asyncio.Condition()
        self._in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)  # most requests open at once
        # kept up to date per request, so waiting on big runs costs O(1) per check
        self.acked: dict[str, set[str]] = defaultdict(set)  # event ids acknowledged per path
        self.acked_total = 0  # events acknowledged, duplicates included
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to ``path`` with ``answers``, in order."""
        self._scripts[path].extend(answers)

    def default(self, path: str, answer: Answer) -> None:
        """Answer every unscripted request to ``path`` with ``answer``."""
        self._defaults[path] = answer

    async def _handle(self, request: web.Request) -> web.Response:
        path, started = request.path, time.time()
        self._in_flight[path] += 1
        self.max_in_flight[path] = max(self.max_in_flight[path], self._in_flight[path])
        async with self._changed:
            self._changed.notify_all()
        try:
            return await self._answer(request, path, started)
        finally:
            self._in_flight[path] -= 1

    async def _answer(self, request: web.Request, path: str, started: float) -> web.Response:
        body = await request.read()
        answer = self._scripts[path].popleft() if self._scripts[path] else None
        answer = answer or self._defaults.get(path, Answer())
        if answer.hang:
            await asyncio.sleep(answer.hang)
        gone = request.transport is None or request.transport.is_closing()
        status = 0 if gone else answer.status
        received = Received(path, dict(request.headers), body, time.time(), status, started)
        if 200 <= status < 300 and body.startswith(b'{"payload"'):
            ids = [event["id"] for event in received.events]
            self.acked[path].update(ids)
            self.acked_total += len(ids)
        async with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        return web.Response(status=answer.status, headers=answer.headers, text=answer.body)

    def in_flight(self, path: str) -> int:
        """Requests to ``path`` received and not answered yet."""
        return self._in_flight[path]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[dict[str, Any]]:
        """Events acknowledged (2xx) at ``path``, in arrival order."""
        return [e for r in self.at(path) if 200 <= r.answered < 300 for e in r.events]

    def once_each(self, path: str) -> tuple[list[str], int]:
        """The event ids at ``path`` in the order their packages first arrived, counting each
        package once (at-least-once: a worker that dies before recording an acknowledged
        attempt sends that package again), and how many packages came more than once. A
        package sent again must be byte for byte the same, and no event may arrive in two
        different packages."""
        bodies: dict[str, bytes] = {}
        ids: list[str] = []
        for request in self.at(path):
            if request.package_id in bodies:
                assert bodies[request.package_id] == request.body, "a re-sent package changed"
                continue
            bodies[request.package_id] = request.body
            ids.extend(event["id"] for event in request.events)
        assert len(ids) == len(set(ids)), "an event arrived in two different packages"
        sent = Counter(request.package_id for request in self.at(path))
        return ids, sum(1 for count in sent.values() if count > 1)

    async def wait_for(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - a per-call bound
        what: str = "condition",
    ) -> None:
        """Wait until ``condition()`` holds; fail (not hang) after a generous ``timeout``."""

        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
