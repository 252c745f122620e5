"""Which addresses Hookline may connect to, checked after DNS resolution (SSRF guard)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class BlockedAddress(OSError):
    """The target resolved only to addresses Hookline must not call."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or address in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_forbidden(address: IPAddress, allowed: Sequence[Network] = ()) -> bool:
    """True for loopback, private, link-local, CGNAT, multicast, reserved, metadata addresses.

    The rule is "only globally routable unicast", which covers every special range of the IANA
    registries; IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged
    by the embedded address too. ``allowed`` subnets are let through (private deployments).
    """
    if any(address in network for network in allowed):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and address.ipv4_mapped is not None:
            return is_forbidden(embedded, allowed)  # a mapped address *is* its IPv4 address
        if embedded is not None and is_forbidden(embedded, allowed):
            return True
    return address.is_multicast or not address.is_global


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's resolver, then drops every forbidden address.

    The check runs at connect time on the addresses actually used, so a DNS answer that changes
    after registration (rebinding) does not reach a private address.
    """

    def __init__(
        self, inner: AbstractResolver | None = None, allowed: Sequence[Network] = ()
    ) -> None:
        self._inner = inner or ThreadedResolver()
        self._allowed = tuple(allowed)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        safe = [a for a in answers if not self._forbidden(a)]
        if not safe:
            raise BlockedAddress(f"{host} resolves only to forbidden addresses")
        return safe

    def _forbidden(self, answer: ResolveResult) -> bool:
        address = parse_ip(str(answer["host"]))
        return address is None or is_forbidden(address, self._allowed)

    async def close(self) -> None:
        await self._inner.close()
