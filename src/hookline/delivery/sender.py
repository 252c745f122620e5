"""One shared aiohttp session that POSTs packages: no redirects, timeouts, capped reads."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from hookline.config import Settings
from hookline.delivery.guard import (
    BlockedAddress,
    GuardedResolver,
    IPAddress,
    Network,
    is_forbidden,
    parse_ip,
)

USER_AGENT = "Hookline-Webhooks/0.1"
_MAX_HEADERS = 50


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP try gave. ``status`` is None for a network error or a timeout."""

    status: int | None
    duration_ms: float
    headers: dict[str, str]
    excerpt: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _describe(exc: aiohttp.ClientError) -> str:
    """The error as recorded; a target the SSRF guard blocked says so, not "DNS error"."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, BlockedAddress):
        return f"refused: {exc.os_error}"
    return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=4096)
def _literal_address(url: str) -> IPAddress | None:
    """The IP address a URL names as its host, if it is one (cached: it is checked before every
    request, and splitting the URL and parsing the address cost as much as signing it)."""
    return parse_ip(urlsplit(url).hostname or "")


@functools.lru_cache(maxsize=4096)
def _parsed(url: str) -> URL:
    """The URL as aiohttp would parse it for each request (cached: parsing and encoding it
    again was a tenth of aiohttp's time per request)."""
    return URL(url)


def _text(header: str) -> str:
    """A response header as stored: aiohttp keeps bytes that are not UTF-8 as lone
    surrogates, which are not text; they become U+FFFD, as in the body's excerpt."""
    if header.isascii():
        return header
    return header.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Sender:
    """Sends packages over one connection pool; create in a running loop, ``close`` at the end."""

    def __init__(self, settings: Settings, *, allowed: Sequence[Network] = ()) -> None:
        self._guarded = not settings.allow_insecure_targets
        self._allowed = tuple(allowed)
        self._excerpt = settings.response_excerpt_bytes
        local = (settings.source_address, 0) if settings.source_address else None
        connector = aiohttp.TCPConnector(
            limit=settings.max_concurrency,
            limit_per_host=0,
            resolver=GuardedResolver(allowed=self._allowed) if self._guarded else None,
            local_addr=local,
            ttl_dns_cache=60,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.request_timeout.total_seconds(),
                sock_connect=settings.connect_timeout.total_seconds(),
            ),
            # Responses are kept as an excerpt of their raw bytes, so ask for them uncompressed.
            # (A default header, not ``skip_auto_headers``: that makes aiohttp rebuild a
            # header dict on every request.)
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            auto_decompress=False,
            # One session posts for every tenant: a cookie one endpoint sets must never be
            # sent to another's on the same host (nor back to its own: deliveries are
            # stateless). No jar also spares aiohttp a cookie lookup per request.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _refuse_literal(self, url: str) -> str | None:
        if not self._guarded:
            return None
        address = _literal_address(url)
        if address is not None and is_forbidden(address, self._allowed):
            return f"refused: {address} is not a public address"
        return None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """POST ``body`` once; never raises for network trouble, reports it instead."""
        started = time.perf_counter()
        refused = self._refuse_literal(url)
        if refused:
            return SendResult(None, 0.0, {}, "", refused)
        try:
            async with self._session.post(
                _parsed(url), data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                excerpt = await response.content.read(self._excerpt) if self._excerpt else b""
                kept = list(response.headers.items())[:_MAX_HEADERS]
                return SendResult(
                    response.status,
                    (time.perf_counter() - started) * 1000,
                    {_text(k.lower()): _text(v[:500]) for k, v in kept},
                    excerpt.decode("utf-8", "replace"),
                )
        except TimeoutError:
            return self._failed(started, "timeout")
        except aiohttp.ClientError as exc:
            return self._failed(started, _describe(exc))
        except OSError as exc:
            return self._failed(started, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _failed(started: float, error: str) -> SendResult:
        return SendResult(None, (time.perf_counter() - started) * 1000, {}, "", error[:500])

    async def close(self) -> None:
        await self._session.close()
        await asyncio.sleep(0)
