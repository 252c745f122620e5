"""A fast webhook receiver for the benchmarks, run in its own process.

    python -m bench.receiver --port 0      # prints "receiver listening on http://127.0.0.1:PORT"

A bare asyncio protocol (uvloop if available): it parses HTTP/1.1 with keep-alive, answers
``200`` with an empty body at once, and counts, per path, the packages and events that
arrived (the body is ``{"payload": [event, ...]}``; a package is known by its ``webhook-id``).
Control endpoints on the same port (under ``/_bench/``):

- ``GET /_bench/stats``: ``{"events", "packages", "duplicates", "first", "last", "paths"}``
  (``first``/``last`` are wall-clock arrival times, ``paths`` how many paths got something);
- ``GET /_bench/arrivals``: ``{event_id: first arrival time}`` (only with ``record`` on);
- ``POST /_bench/reset`` with ``{"record": bool, "hang": [path, ...], "per_path": bool}``:
  clears the counters and sets the mode. Requests to a ``hang`` path never get an
  answer (the sender's timeout fires), which simulates endpoints that time out.
- ``GET /_bench/paths``: ``{path: events}`` (only with ``per_path`` on).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class State:
    """Counters shared by every connection."""

    def __init__(self) -> None:
        self.reset({})

    def reset(self, options: dict[str, Any]) -> None:
        self.events = 0
        self.packages = 0
        self.duplicates = 0
        self.first = 0.0
        self.last = 0.0
        self.package_ids: set[str] = set()
        self.record = bool(options.get("record", False))
        self.per_path = bool(options.get("per_path", False))
        self.hang = frozenset(options.get("hang", ()))
        self.arrivals: dict[str, float] = {}
        self.paths: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "packages": self.packages,
            "duplicates": self.duplicates,
            "first": self.first,
            "last": self.last,
            "paths": len(self.paths),
        }

    def received(self, path: str, package_id: str | None, body: bytes) -> None:
        now = time.time()
        if package_id is not None:
            if package_id in self.package_ids:
                self.duplicates += 1
                return
            self.package_ids.add(package_id)
        try:
            payload = orjson.loads(body).get("payload") or []
        except (orjson.JSONDecodeError, AttributeError):
            return
        if not self.first:
            self.first = now
        self.last = now
        self.packages += 1
        self.events += len(payload)
        if self.per_path:
            self.paths[path] = self.paths.get(path, 0) + len(payload)
        else:
            self.paths.setdefault(path, 0)
        if self.record:
            for event in payload:
                self.arrivals.setdefault(event["id"], now)


class Http(asyncio.Protocol):
    """HTTP/1.1, keep-alive, Content-Length bodies only (what aiohttp and requests send)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.hung = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.hung:
            return
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path = [*head[0].split(" "), "", ""][:2]
            self.request(method, path, headers, body)
            if self.hung:
                return

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        assert self.transport is not None
        if path.startswith("/_bench/"):
            self.control(method, path, body)
            return
        if path in self.state.hang:
            self.hung = True  # never answer; the client times out and closes
            return
        self.state.received(path, headers.get("webhook-id"), body)
        self.transport.write(OK)

    def control(self, method: str, path: str, body: bytes) -> None:
        assert self.transport is not None
        state = self.state
        if path == "/_bench/reset" and method == "POST":
            state.reset(orjson.loads(body) if body else {})
            out: Any = {"ok": True}
        elif path == "/_bench/arrivals":
            out = state.arrivals
        elif path == "/_bench/paths":
            out = state.paths
        else:
            out = state.stats()
        data = orjson.dumps(out)
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(data)).encode()
            + b"\r\n\r\n"
            + data
        )


async def serve(port: int) -> None:
    state = State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(state), "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"receiver listening on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port))
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
