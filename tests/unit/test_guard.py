"""The SSRF guard (SPEC 4): forbidden address classes and the resolver that enforces them."""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hookline.delivery.guard import BlockedAddress, GuardedResolver, is_forbidden, parse_ip


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


FORBIDDEN = {
    "loopback-v4": "127.0.0.1",
    "loopback-v4-other": "127.255.255.254",
    "loopback-v6": "::1",
    "private-10": "10.0.0.1",
    "private-10-top": "10.255.255.255",
    "private-172.16": "172.16.0.1",
    "private-172.31": "172.31.255.254",
    "private-192.168": "192.168.1.1",
    "unique-local-fc00": "fc00::1",
    "unique-local-fd": "fd12:3456:789a::1",
    "link-local-v4": "169.254.1.1",
    "metadata": "169.254.169.254",
    "link-local-v6": "fe80::1",
    "cgnat": "100.64.0.1",
    "cgnat-top": "100.127.255.254",
    "multicast-v4": "224.0.0.1",
    "multicast-v4-global": "233.252.0.1",
    "multicast-v6": "ff02::1",
    "multicast-v6-global": "ff0e::1",
    "reserved": "240.0.0.1",
    "unspecified-v4": "0.0.0.0",
    "this-network": "0.1.2.3",
    "unspecified-v6": "::",
    "broadcast": "255.255.255.255",
    "benchmarking": "198.18.0.1",
    "documentation-v4": "192.0.2.1",
    "documentation-v6": "2001:db8::1",
    "mapped-loopback": "::ffff:127.0.0.1",
    "mapped-private": "::ffff:10.0.0.1",
    "mapped-metadata": "::ffff:169.254.169.254",
    "6to4-loopback": "2002:7f00:1::",
    "6to4-private": "2002:c0a8:101::1",
    "nat64-private": "64:ff9b::a00:1",
    "nat64-loopback": "64:ff9b::7f00:1",
    "nat64-local-private": "64:ff9b:1::a00:1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "teredo-loopback-client": "2001:0:4136:e378:8000:63bf:80ff:fffe",
}

ALLOWED = {
    "example": "93.184.216.34",
    "cloudflare-v4": "1.1.1.1",
    "google-dns": "8.8.8.8",
    "cloudflare-v6": "2606:4700:4700::1111",
    "google-v6": "2001:4860:4860::8888",
    "not-quite-private-172.32": "172.32.0.1",
    "not-quite-cgnat": "100.128.0.1",
    "nat64-public": "64:ff9b::5db8:d822",
}


@pytest.mark.parametrize("address", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden(address: str) -> None:
    assert is_forbidden(ip(address)) is True


@pytest.mark.parametrize("address", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed(address: str) -> None:
    assert is_forbidden(ip(address)) is False


def test_allow_listed_subnet_lets_private_addresses_through() -> None:
    allowed = [ipaddress.ip_network("10.0.0.0/8")]
    assert is_forbidden(ip("10.1.2.3"), allowed) is False
    assert is_forbidden(ip("10.255.0.1"), allowed) is False
    # only that subnet
    assert is_forbidden(ip("192.168.1.1"), allowed) is True
    assert is_forbidden(ip("127.0.0.1"), allowed) is True
    assert is_forbidden(ip("fd00::1"), allowed) is True


def test_allow_listed_v6_subnet() -> None:
    allowed = [ipaddress.ip_network("fd00:1::/32")]
    assert is_forbidden(ip("fd00:1::5"), allowed) is False
    assert is_forbidden(ip("fd00:2::5"), allowed) is True


def test_embedded_private_address_stays_forbidden_under_an_unrelated_allow_list() -> None:
    allowed = [ipaddress.ip_network("192.168.0.0/16")]
    assert is_forbidden(ip("::ffff:10.0.0.1"), allowed) is True
    assert is_forbidden(ip("64:ff9b::a00:1"), allowed) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", ip("10.0.0.1")),
        ("[::1]", ip("::1")),
        ("fe80::1%eth0", ip("fe80::1")),
        ("example.com", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_parse_ip(text: str, expected: object) -> None:
    assert parse_ip(text) == expected


# --------------------------------------------------------------------------- resolver


class FakeResolver(AbstractResolver):
    """Answers every query with the same fixed addresses, as a hostile DNS server might."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts
        self.queries: list[tuple[str, int, socket.AddressFamily]] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append((host, port, family))
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.hosts
        ]

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    "hosts",
    [
        ["127.0.0.1"],
        ["10.0.0.1", "192.168.0.1", "172.16.0.1"],
        ["169.254.169.254"],
        ["::1", "fe80::1%eth0", "::ffff:127.0.0.1"],
        ["64:ff9b::a9fe:a9fe"],  # the metadata address through NAT64
        ["not-an-address"],
        [],
    ],
)
async def test_all_forbidden_answers_raise(hosts: list[str]) -> None:
    inner = FakeResolver(hosts)
    resolver = GuardedResolver(inner)
    with pytest.raises(BlockedAddress, match=r"evil\.example"):
        await resolver.resolve("evil.example", 443)
    assert inner.queries == [("evil.example", 443, socket.AF_INET)]


def test_blocked_address_is_an_os_error() -> None:
    # aiohttp turns OSError from the resolver into a connection error, i.e. a retryable failure
    assert issubclass(BlockedAddress, OSError)


async def test_mixed_answers_keep_only_public_ones_in_order() -> None:
    inner = FakeResolver(
        [
            "10.0.0.1",
            "93.184.216.34",
            "127.0.0.1",
            "::ffff:192.168.0.1",
            "1.1.1.1",
            "169.254.169.254",
            "2606:4700:4700::1111",
            "fd00::1",
        ]
    )
    answers = await GuardedResolver(inner).resolve("rebind.example", 443, socket.AF_UNSPEC)
    assert [a["host"] for a in answers] == ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"]
    assert all(a["hostname"] == "rebind.example" and a["port"] == 443 for a in answers)
    assert inner.queries == [("rebind.example", 443, socket.AF_UNSPEC)]


async def test_rebinding_is_checked_on_every_resolution() -> None:
    inner = FakeResolver(["93.184.216.34"])
    resolver = GuardedResolver(inner)
    assert [a["host"] for a in await resolver.resolve("rebind.example", 443)] == ["93.184.216.34"]
    inner.hosts = ["127.0.0.1"]  # the DNS answer changes after the first lookup
    with pytest.raises(BlockedAddress):
        await resolver.resolve("rebind.example", 443)


async def test_allowed_subnet_passes_through_the_resolver() -> None:
    inner = FakeResolver(["10.1.2.3", "127.0.0.1"])
    resolver = GuardedResolver(inner, allowed=[ipaddress.ip_network("10.0.0.0/8")])
    answers = await resolver.resolve("internal.example", 8443)
    assert [a["host"] for a in answers] == ["10.1.2.3"]


async def test_close_closes_the_inner_resolver() -> None:
    inner = FakeResolver([])
    await GuardedResolver(inner).close()
    assert inner.closed is True


async def test_aiohttp_session_refuses_to_connect_to_a_private_answer() -> None:
    inner = FakeResolver(["127.0.0.1"])
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(inner), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.post("http://evil.example:8080/hook", data=b"{}")
    assert inner.queries and inner.queries[0][0] == "evil.example"
