"""Everything a delivery needs to be signed, in one call: :func:`sign_package`."""

from __future__ import annotations

from collections.abc import Sequence

from .digest import content_digest
from .keys import SigningKey
from .rfc9421 import HTTPRequestView, canonical_target_uri, message_signature_headers
from .standard import signature_header


def package_request(
    *, url: str, body: bytes, msg_id: str, content_type: str = "application/json"
) -> HTTPRequestView:
    """The POST of a package as the RFC 9421 signer sees it: canonical target URI and the
    covered headers ``Content-Type``, ``Content-Digest`` and ``webhook-id``."""
    headers = {
        "Content-Type": content_type,
        "Content-Digest": content_digest(body),
        "webhook-id": msg_id,
    }
    return HTTPRequestView("POST", canonical_target_uri(url), headers)


def sign_package(
    *,
    url: str,
    body: bytes,
    msg_id: str,
    timestamp: int,
    signing_key: SigningKey,
    secrets: Sequence[str],
    content_type: str = "application/json",
    v1a: bool = False,
) -> dict[str, str]:
    """All headers to add to the POST of one package (sign again for every attempt).

    Returns ``Content-Type``, ``Content-Digest``, ``Signature-Input``, ``Signature``
    (RFC 9421, label ``sig1``, ``created=timestamp``) and ``webhook-id``,
    ``webhook-timestamp``, ``webhook-signature`` (Standard Webhooks, one ``v1`` entry per
    secret, plus ``v1a`` with the Ed25519 ``signing_key`` when ``v1a`` is true).
    ``body`` must be exactly the bytes sent; ``url`` the URL requested.
    """
    request = package_request(url=url, body=body, msg_id=msg_id, content_type=content_type)
    signatures = message_signature_headers(request, signing_key=signing_key, created=timestamp)
    v1a_key = signing_key if v1a else None
    return {
        **request.headers,
        **signatures,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body, v1a_key=v1a_key),
    }
