"""Verification of the RFC 9421 HTTP Message Signature (``Signature-Input`` / ``Signature``)
and its ``Content-Digest`` (RFC 9530)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import http_sf
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
)

from hookline.signatures.digest import digest_matches
from hookline.signatures.keys import ALGORITHMS, PublicKey, algorithm_for_key
from hookline.signatures.rfc9421 import (
    COVERED_COMPONENTS,
    LABEL,
    HTTPRequestView,
    canonical_target_uri,
)

from .checks import check_timestamp, require_headers
from .errors import BadDigest, BadSignature, Expired

#: Looks up the public key for a ``keyid``; raises :class:`UnknownKey` if there is none.
KeyLookup = Callable[[str], PublicKey]


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        # The library checks against the wall clock with a fixed 5 s skew; the time window
        # is checked before, with the caller's clock and tolerance (see _check_times).
        return None


def _signature_params(signature_input: str) -> dict[str, Any]:
    """The parameters (created, keyid, alg, ...) of our label in ``Signature-Input``."""
    try:
        members = http_sf.parse(signature_input.encode("ascii"), tltype="dictionary")
    except (ValueError, UnicodeError) as exc:
        raise BadSignature(f"malformed Signature-Input: {exc}") from exc
    if not isinstance(members, dict):
        raise BadSignature("malformed Signature-Input")
    member = members.get(LABEL)
    if member is None and len(members) == 1:
        member = next(iter(members.values()))
    if not isinstance(member, tuple) or not isinstance(member[0], list):
        raise BadSignature(f"Signature-Input has no {LABEL!r} signature")
    return dict(member[1])


def _check_times(params: Mapping[str, Any], *, now: int, tolerance: int) -> None:
    created = params.get("created")
    if type(created) is not int:
        raise BadSignature('Signature-Input lacks an integer "created" parameter')
    check_timestamp(created, now=now, tolerance=tolerance, what="created")
    expires = params.get("expires")
    if type(expires) is int and expires < now:
        raise Expired(f"signature expired at {expires} (now {now})")


def _keyid(params: Mapping[str, Any]) -> str:
    keyid = params.get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise BadSignature('Signature-Input lacks a "keyid" parameter')
    return keyid


def _check_signature(request: HTTPRequestView, keyid: str, key: PublicKey) -> None:
    verifier = _Verifier(
        signature_algorithm=ALGORITHMS[algorithm_for_key(key)],
        key_resolver=MappingKeyResolver(public_keys={keyid: key}, private_keys={}),
    )
    try:
        verifier.verify(request, max_age=None, require_components=COVERED_COMPONENTS)
    except HTTPMessageSignaturesException as exc:
        raise BadSignature(f"RFC 9421 signature does not verify: {exc}") from exc


def verify_message_signature(
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    url: str,
    key_for: KeyLookup,
    now: int,
    tolerance: int,
) -> None:
    """Check the ``sig1`` signature: time window, known ``keyid``, digest, then signature.

    ``headers`` must have lower-case names; ``url`` is the URL the sender requested.
    """
    require_headers(headers, "signature-input", "signature", "content-digest")
    params = _signature_params(headers["signature-input"])
    _check_times(params, now=now, tolerance=tolerance)
    keyid = _keyid(params)
    key = key_for(keyid)
    if not digest_matches(headers["content-digest"], body):
        raise BadDigest("Content-Digest does not match the body")
    request = HTTPRequestView(method.upper(), canonical_target_uri(url), headers)
    _check_signature(request, keyid, key)
