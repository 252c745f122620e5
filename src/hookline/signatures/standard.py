"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: a
space-separated list of ``v1,<base64 HMAC-SHA256>`` entries, one per valid secret (so a
rotated secret and its successor both verify), each over ``"{id}.{timestamp}.{body}"``.
Optionally a ``v1a,<base64 Ed25519 signature>`` entry over the same content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable, Sequence
from functools import lru_cache

from .keys import ED25519, SigningKey

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    """A new webhook secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


@lru_cache(maxsize=4096)
def decode_secret(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret (the prefix is optional).

    Raises ``ValueError`` if the secret is empty or not base64.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """The bytes both ``v1`` and ``v1a`` sign: ``{id}.{timestamp}.{body}``."""
    return f"{msg_id}.{timestamp}.".encode() + body


def _hmac(secret: str, content: bytes) -> bytes:
    return hmac.new(decode_secret(secret), content, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` HMAC-SHA256 signature entry for one secret."""
    return "v1," + _b64(_hmac(secret, signed_content(msg_id, timestamp, body)))


def sign_v1a(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1a,<base64>`` Ed25519 signature entry (Standard Webhooks asymmetric scheme)."""
    if key.alg != ED25519:
        raise ValueError("v1a signatures need an ed25519 key")
    return "v1a," + _b64(key.sign(signed_content(msg_id, timestamp, body)))


def signature_header(
    secrets: Sequence[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    v1a_key: SigningKey | None = None,
) -> str:
    """The ``webhook-signature`` value: one ``v1`` entry per secret, then ``v1a`` if asked."""
    content = signed_content(msg_id, timestamp, body)
    entries = ["v1," + _b64(_hmac(secret, content)) for secret in secrets]
    if v1a_key is not None:
        entries.append(sign_v1a(v1a_key, msg_id, timestamp, body))
    if not entries:
        raise ValueError("at least one secret (or a v1a key) is needed")
    return " ".join(entries)


def _v1_signatures(header: str) -> list[bytes]:
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return found


def verify_v1(
    secrets: Iterable[str], msg_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether any ``v1`` entry of ``header`` matches any secret (constant-time compare).

    ``timestamp`` is the ``webhook-timestamp`` header exactly as received. Checking that it
    is recent is the caller's job.
    """
    content = signed_content(msg_id, timestamp, body)
    received = _v1_signatures(header)
    matched = False
    for secret in secrets:
        expected = _hmac(secret, content)
        for candidate in received:
            # No early exit: the work done does not depend on which entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched
