"""HTTP Message Signatures (RFC 9421) for deliveries, built on ``http_message_signatures``.

Every delivery carries one signature, label ``sig1``, covering :data:`COVERED_COMPONENTS`
with the parameters ``created``, ``keyid`` and ``alg``.
"""

from __future__ import annotations

import base64
import datetime
import re
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


def _sf_string(value: str) -> str:
    """An RFC 8941 sf-string: printable ASCII only, with ``\\`` and ``"`` escaped."""
    if not all(" " <= char <= "~" for char in value):
        raise ValueError(f"{value!r} cannot be an sf-string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_INNER_LIST = "(" + " ".join(_sf_string(c) for c in COVERED_COMPONENTS) + ")"


@lru_cache(maxsize=64)
def _params_after_created(kid: str, alg: str) -> str:
    return f";keyid={_sf_string(kid)};alg={_sf_string(alg)}"


_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@lru_cache(maxsize=4096)
def is_encoded_uri(url: str) -> bool:
    """Whether ``url`` holds only RFC 3986 characters, with well-formed %XX escapes: what is
    signed as ``@target-uri`` must be exactly what goes on the wire, where an HTTP client
    would otherwise escape it (webhook URLs are checked at registration)."""
    return _URI_CHARS.issuperset(url) and not _BAD_ESCAPE.search(url)


def _plain(value: str) -> bool:
    # What a component line may hold verbatim: visible ASCII and inner spaces (no CR/LF, no
    # leading or trailing whitespace, which the library would trim).
    return value.isascii() and value.isprintable() and value.strip() == value


def _fast_prepare(
    request: HTTPRequestView, signing_key: SigningKey, created: int
) -> tuple[bytes, str] | None:
    """The signature base and ``@signature-params`` of a delivery, built directly.

    Deliveries always cover the same five components with the same parameters, so the base
    is a fixed template; the library's general path spends most of a signature's time
    re-serialising it character by character. Returns None for anything unusual (the caller
    then uses the library); tests check both give the same bytes."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    values = [
        request.method,
        request.url,
        headers.get("content-type"),
        headers.get("content-digest"),
        headers.get("webhook-id"),
    ]
    if request.method != "POST" or not all(v is not None and _plain(v) for v in values):
        return None
    if not is_encoded_uri(request.url):
        return None  # the library's checks decide
    params = f"{_INNER_LIST};created={created}" + _params_after_created(
        signing_key.kid, signing_key.alg
    )
    lines = [f'"{c}": {v}' for c, v in zip(COVERED_COMPONENTS, values, strict=True)]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode("ascii"), params


def message_signature_headers(
    request: HTTPRequestView, *, signing_key: SigningKey, created: int
) -> dict[str, str]:
    """``Signature-Input`` and ``Signature`` for a request that already carries the covered
    headers (``content-type``, ``content-digest``, ``webhook-id``).

    The base comes from ``_fast_prepare`` (or the library's ``prepare`` when that declines);
    the cached key signs it. ``HTTPMessageSigner.apply`` is skipped: it rebuilds the whole
    base a second time only to detect a message changed by a concurrent remote signer.
    """
    fast = _fast_prepare(request, signing_key, created)
    if fast is None:
        prepared = _prepare(request, signing_key, created)
        fast = prepared.signature_base, prepared.signature_params
    base, params = fast
    signature = signing_key.sign(base)
    return {
        "Signature-Input": f"{LABEL}={params}",
        "Signature": f"{LABEL}=:{base64.b64encode(signature).decode('ascii')}:",
    }


def signature_base(request: HTTPRequestView, *, signing_key: SigningKey, created: int) -> str:
    """The RFC 9421 signature base of a request (for documentation and debugging)."""
    return _prepare(request, signing_key, created).signature_base.decode("ascii")
