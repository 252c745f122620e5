"""``Content-Digest`` (RFC 9530) of a delivery body."""

from __future__ import annotations

import base64
import hashlib

from http_message_signatures import ContentDigest, HTTPMessageSignaturesException


def content_digest(body: bytes) -> str:
    """The ``Content-Digest`` field value for ``body``: ``sha-512=:<base64>:``."""
    return "sha-512=:" + base64.b64encode(hashlib.sha512(body).digest()).decode("ascii") + ":"


def digest_matches(field_value: str, body: bytes) -> bool:
    """Whether a received ``Content-Digest`` value matches ``body``.

    Every member must be a supported algorithm (``sha-256`` / ``sha-512``) and match; a
    malformed field does not match.
    """
    try:
        ContentDigest.verify(field_value, body)
    except (HTTPMessageSignaturesException, UnicodeError):
        return False
    return True
