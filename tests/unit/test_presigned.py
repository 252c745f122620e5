"""Headers signed ahead of a package's first attempt (``delivery.signing.Presigned``): used
only when they are byte for byte what signing at send time gives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hookline.delivery import signing
from hookline.delivery.signing import Presigned, Signer
from hookline.signatures.keys import generate_signing_key

URL = "https://example.com/hook"
BODY = b'{"payload":[]}'
SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]


class CountingSigner(Signer):
    def __init__(self) -> None:
        super().__init__(generate_signing_key())
        self.calls = 0

    def headers(self, url: str, body: bytes, **kw: Any) -> dict[str, str]:
        self.calls += 1
        return super().headers(url, body, **kw)


def _clock(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    monkeypatch.setattr(signing.time, "time", lambda: now)


async def test_signed_while_the_loop_waits_and_taken_in_the_same_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = CountingSigner()
    _clock(monkeypatch, 1_800_000_000.25)
    presigned = Presigned(signer, URL, BODY, msg_id="p1", secrets=SECRETS)
    assert signer.calls == 0  # left to the loop: nothing signed before it runs again
    await asyncio.sleep(0)
    assert signer.calls == 1
    expected = signer.headers(URL, BODY, msg_id="p1", timestamp=1_800_000_000, secrets=SECRETS)
    assert presigned.take(1_800_000_000) == expected


async def test_another_second_or_key_means_signing_again(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = CountingSigner()
    _clock(monkeypatch, 1_800_000_000.99)
    late = Presigned(signer, URL, BODY, msg_id="p1", secrets=SECRETS)
    rotated = Presigned(signer, URL, BODY, msg_id="p2", secrets=SECRETS)
    await asyncio.sleep(0)
    assert late.take(1_800_000_001) is None  # the attempt starts a second later
    signer.key = generate_signing_key()  # keys rotated in between
    assert rotated.take(1_800_000_000) is None


async def test_not_signed_yet_when_needed_is_not_signed_at_all() -> None:
    signer = CountingSigner()
    early = Presigned(signer, URL, BODY, msg_id="p1", secrets=SECRETS)
    dropped = Presigned(signer, URL, BODY, msg_id="p2", secrets=SECRETS)
    assert early.take(1_800_000_000) is None
    dropped.cancel()  # its package did not open
    await asyncio.sleep(0)
    assert signer.calls == 0


async def test_a_signing_error_is_left_to_the_attempt() -> None:
    signer = CountingSigner()
    escaped: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: escaped.append(context))
    presigned = Presigned(signer, URL, BODY, msg_id="p1", secrets=["not a secret"])
    await asyncio.sleep(0)
    assert escaped == []  # nothing reached the loop's handler
    assert presigned.take(1_800_000_000) is None
    with pytest.raises(ValueError):
        signer.headers(URL, BODY, msg_id="p1", timestamp=1_800_000_000, secrets=["not a secret"])
