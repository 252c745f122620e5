"""Verify a delivery from Hookline: :func:`verify`, or :class:`WebhookVerifier` to configure
once and verify many."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypedDict

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from hookline.signatures.keys import PublicKey, algorithm_for_key

from .checks import HeaderSource, normalize_headers
from .errors import UnknownKey
from .events import Event, parse_package
from .jwks import JWKSClient, keys_from_jwks
from .message_signature import KeyLookup, verify_message_signature
from .standard_webhooks import verify_standard_webhooks

Secrets: TypeAlias = str | Sequence[str]
JWKS: TypeAlias = JWKSClient | Mapping[str, Any]
#: A public key object, or its PEM.
PublicKeyLike: TypeAlias = PublicKey | bytes | str


def _load_public_key(public_key: PublicKeyLike) -> PublicKey:
    if not isinstance(public_key, bytes | str):
        return public_key
    pem = public_key.encode("ascii") if isinstance(public_key, str) else public_key
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ValueError(f"unsupported public key type {type(key).__name__}")
    algorithm_for_key(key)  # rejects curves other than P-256
    return key


def _mapping_lookup(keys: Mapping[str, PublicKey]) -> KeyLookup:
    def lookup(kid: str) -> PublicKey:
        if kid not in keys:
            raise UnknownKey(f"keyid {kid!r} is not in the given JWKS")
        return keys[kid]

    return lookup


def _key_lookup(jwks: JWKS | None, public_key: PublicKeyLike | None) -> KeyLookup | None:
    if jwks is not None and public_key is not None:
        raise ValueError("give jwks= or public_key=, not both")
    if isinstance(jwks, JWKSClient):
        return jwks.get_key
    if jwks is not None:
        return _mapping_lookup(keys_from_jwks(jwks))
    if public_key is not None:
        key = _load_public_key(public_key)
        return lambda _kid: key
    return None


def verify(
    headers: HeaderSource,
    body: bytes,
    *,
    method: str = "POST",
    url: str | None = None,
    secret: Secrets | None = None,
    jwks: JWKS | None = None,
    public_key: PublicKeyLike | None = None,
    tolerance: int = 300,
    now: int | None = None,
) -> list[Event]:
    """Verify a delivery and return its events.

    Checks every scheme you give material for (both must pass when both are given):

    * ``secret`` (a ``whsec_`` secret, or several during a rotation): the Standard Webhooks
      ``webhook-signature``, with ``webhook-timestamp`` within ``tolerance`` seconds.
    * ``jwks`` (a :class:`JWKSClient`, or a JWKS document) or ``public_key`` (a key object or
      PEM, trusted for any ``keyid``): the RFC 9421 signature ``sig1``. Needs ``url``, the URL
      Hookline posted to (the one registered for the webhook, not the one a proxy
      forwarded to); checks ``Content-Digest`` against ``body``, ``created`` within
      ``tolerance`` and that ``keyid`` is known.

    ``body`` must be the raw bytes received, before any JSON parsing. ``now`` (Unix seconds)
    defaults to the current time. Raises a :class:`VerificationError` subclass
    (:class:`MissingHeader`, :class:`BadDigest`, :class:`BadSignature`, :class:`Expired`,
    :class:`UnknownKey`, :class:`BadPayload`), or ``ValueError`` when called without any
    key material or without ``url`` for RFC 9421.
    """
    key_for = _key_lookup(jwks, public_key)
    if key_for is None and secret is None:
        raise ValueError("nothing to verify with: give secret=, jwks= or public_key=")
    received = normalize_headers(headers)
    current = int(time.time()) if now is None else now
    if key_for is not None:
        if url is None:
            raise ValueError("url= (the URL Hookline posted to) is needed for RFC 9421")
        verify_message_signature(
            received,
            body,
            method=method,
            url=url,
            key_for=key_for,
            now=current,
            tolerance=tolerance,
        )
    if secret is not None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        verify_standard_webhooks(received, body, secrets=secrets, now=current, tolerance=tolerance)
    return parse_package(body)


class VerifierOptions(TypedDict, total=False):
    """Keyword arguments of :class:`WebhookVerifier` (and of the framework adapters)."""

    secret: Secrets | None
    jwks: JWKS | str | None
    jwks_headers: Mapping[str, str] | None
    public_key: PublicKeyLike | None
    tolerance: int
    url: str | None


@dataclass(frozen=True)
class WebhookVerifier:
    """Verification settings fixed once (see :func:`verify` for their meaning).

    ``jwks`` may also be the JWKS URL (``https://<hookline>/auth/verify_keys``); a caching
    :class:`JWKSClient` is made for it, sending ``jwks_headers`` (Hookline's endpoint needs
    ``{"Authorization": "Bearer <API key with webhooks:read>"}``). ``url``, when set,
    overrides the request URL the framework adapters would otherwise use: set it when a
    proxy or load balancer changes the scheme, host or path between Hookline and your app.
    """

    secret: Secrets | None = None
    jwks: JWKS | str | None = None
    public_key: PublicKeyLike | None = None
    tolerance: int = 300
    url: str | None = None
    jwks_headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.jwks, str):
            object.__setattr__(self, "jwks", JWKSClient(self.jwks, headers=self.jwks_headers))
        elif self.jwks_headers is not None:
            raise ValueError("jwks_headers= is only used with jwks= given as a URL")
        if self.secret is None and self.jwks is None and self.public_key is None:
            raise ValueError("nothing to verify with: give secret=, jwks= or public_key=")

    def verify(
        self,
        headers: HeaderSource,
        body: bytes,
        *,
        method: str = "POST",
        url: str | None = None,
        now: int | None = None,
    ) -> list[Event]:
        """Verify one delivery; ``url`` is the request URL, unless overridden by ``self.url``."""
        assert not isinstance(self.jwks, str)  # converted in __post_init__
        return verify(
            headers,
            body,
            method=method,
            url=self.url or url,
            secret=self.secret,
            jwks=self.jwks,
            public_key=self.public_key,
            tolerance=self.tolerance,
            now=now,
        )
