"""HTTP Message Signatures (RFC 9421) for deliveries, built on ``http_message_signatures``.

Every delivery carries one signature, label ``sig1``, covering :data:`COVERED_COMPONENTS`
with the parameters ``created``, ``keyid`` and ``alg``.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from http_message_signatures import HTTPMessageSigner, PreparedSignature

from .keys import ALGORITHMS, SigningKey

LABEL = "sig1"
#: What the signature covers, in this order.
COVERED_COMPONENTS: tuple[str, ...] = (
    "@method",
    "@target-uri",
    "content-type",
    "content-digest",
    "webhook-id",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HTTPRequestView:
    """The request shape ``http_message_signatures`` reads: method, absolute URL, headers.

    ``headers`` only needs ``items()`` (and iteration / membership for signing).
    """

    method: str
    url: str
    headers: Mapping[str, str]


@lru_cache(maxsize=4096)
def canonical_target_uri(url: str) -> str:
    """The ``@target-uri`` both sides use: scheme and host lower-cased, default port and
    fragment dropped, empty path as ``/``.

    HTTP clients and proxies routinely rewrite those parts (e.g. ``:443`` is not sent in
    ``Host``), so signer and verifier normalise them identically; path and query are kept
    byte for byte.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


@lru_cache(maxsize=8)
def _signer(alg: str) -> HTTPMessageSigner:
    # prepare() needs no key resolver: the cached key signs the prepared base directly.
    return HTTPMessageSigner(signature_algorithm=ALGORITHMS[alg])


def _prepare(request: HTTPRequestView, signing_key: SigningKey, created: int) -> PreparedSignature:
    return _signer(signing_key.alg).prepare(
        request,
        key_id=signing_key.kid,
        created=datetime.datetime.fromtimestamp(created, datetime.UTC),
        label=LABEL,
        covered_component_ids=COVERED_COMPONENTS,
        use_existing_digest=True,
    )


def message_signature_headers(
    request: HTTPRequestView, *, signing_key: SigningKey, created: int
) -> dict[str, str]:
    """``Signature-Input`` and ``Signature`` for a request that already carries the covered
    headers (``content-type``, ``content-digest``, ``webhook-id``).

    The library builds the signature base (``prepare``); the cached key signs it. We skip
    ``HTTPMessageSigner.apply``, which rebuilds the whole base a second time only to detect
    a message changed by a concurrent remote signer, and serialise the two one-member
    dictionaries ourselves.
    """
    prepared = _prepare(request, signing_key, created)
    signature = signing_key.sign(prepared.signature_base)
    return {
        "Signature-Input": f"{LABEL}={prepared.signature_params}",
        "Signature": f"{LABEL}=:{base64.b64encode(signature).decode('ascii')}:",
    }


def signature_base(request: HTTPRequestView, *, signing_key: SigningKey, created: int) -> str:
    """The RFC 9421 signature base of a request (for documentation and debugging)."""
    return _prepare(request, signing_key, created).signature_base.decode("ascii")
