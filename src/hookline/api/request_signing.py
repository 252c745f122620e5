"""Signed API requests (RFC 9421), required for API keys that have a registered public key.

The signature must cover ``"@method"``, ``"@path"``, ``"@query"``, ``"content-digest"`` (when
the request has a body) and ``"idempotency-key"`` (when the header is sent), carry ``created``
and ``expires`` parameters, and name the API key's id as ``keyid``. See docs/security.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any

import http_sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver

from hookline.errors import BadRequestSignature
from hookline.signatures.keys import ALGORITHMS, PublicKey, algorithm_for_key
from hookline.signatures.rfc9421 import HTTPRequestView

ALWAYS_COVERED = ("@method", "@path", "@query")


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None  # checked before, with the configured tolerance (see _check_times)


@lru_cache(maxsize=1024)
def load_public_key(pem: str) -> PublicKey:
    """An Ed25519 or P-256 public key from PEM; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.encode())
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("the public key must be Ed25519 or ECDSA P-256")


def required_components(headers: Mapping[str, str], body: bytes) -> tuple[str, ...]:
    """The components a request's signature must cover."""
    extra: tuple[str, ...] = ("content-digest",) if body else ()
    if "idempotency-key" in headers:
        extra += ("idempotency-key",)
    return ALWAYS_COVERED + extra


def _params(signature_input: str) -> dict[str, Any]:
    try:
        members = http_sf.parse(signature_input.encode("latin-1"), tltype="dictionary")
    except (ValueError, UnicodeError):
        raise BadRequestSignature("Signature-Input is not a structured dictionary") from None
    if not isinstance(members, dict) or len(members) != 1:
        raise BadRequestSignature("send exactly one signature in Signature-Input")
    member = next(iter(members.values()))
    if not isinstance(member, tuple) or not isinstance(member[0], list):
        raise BadRequestSignature("Signature-Input member must be an inner list")
    return dict(member[1])


def _check_times(params: Mapping[str, Any], *, now: int, skew: int) -> None:
    created, expires = params.get("created"), params.get("expires")
    if type(created) is not int or type(expires) is not int:
        raise BadRequestSignature('the signature needs integer "created" and "expires" parameters')
    if abs(now - created) > skew:
        raise BadRequestSignature(f'"created" is more than {skew}s away from the server clock')
    if expires < now:
        raise BadRequestSignature("the signature has expired")


def verify_request(
    view: HTTPRequestView,
    body: bytes,
    *,
    key_id: str,
    public_key_pem: str,
    max_skew: timedelta,
    now: int | None = None,
) -> None:
    """Raise :class:`BadRequestSignature` unless ``view`` is signed by the registered key.

    ``view.headers`` must have lower-case names.
    """
    if "signature-input" not in view.headers or "signature" not in view.headers:
        raise BadRequestSignature(
            "this API key requires signed requests: send Signature-Input and Signature (RFC 9421)"
        )
    params = _params(view.headers["signature-input"])
    _check_times(
        params, now=int(time.time()) if now is None else now, skew=int(max_skew.total_seconds())
    )
    if params.get("keyid") != key_id:
        raise BadRequestSignature(f'the signature\'s "keyid" must be the API key id {key_id}')
    key = load_public_key(public_key_pem)
    verifier = _Verifier(
        signature_algorithm=ALGORITHMS[algorithm_for_key(key)],
        key_resolver=MappingKeyResolver(public_keys={key_id: key}, private_keys={}),
    )
    try:
        verifier.verify(
            view, max_age=None, require_components=required_components(view.headers, body),
            body=body or None,
        )  # fmt: skip
    except Exception as exc:  # the library raises several types for a bad signature
        raise BadRequestSignature(f"the request signature does not verify: {exc}") from None
