"""Why a delivery was rejected. Catch :class:`VerificationError` to handle them all.

Each class carries the HTTP ``status_code`` a receiver should answer with: ``400`` when the
request is malformed, ``401`` when it is not authentic. Hookline retries any non-2xx answer.
"""

from __future__ import annotations


class VerificationError(Exception):
    """The delivery could not be verified; do not act on it."""

    status_code = 401


class MissingHeader(VerificationError):
    """A header the chosen scheme needs is absent (e.g. ``Content-Digest``)."""

    status_code = 400


class BadDigest(VerificationError):
    """``Content-Digest`` does not match the body: the body was changed or truncated."""


class BadSignature(VerificationError):
    """No signature matches: wrong secret/key, or a signed header or the URL differs."""


class Expired(VerificationError):
    """The signature timestamp is outside the tolerance (too old, or too far in the future)."""


class UnknownKey(VerificationError):
    """The RFC 9421 ``keyid`` is not in the JWKS (even after refetching it)."""


class BadPayload(VerificationError):
    """The body is not a Hookline package (``{"payload": [event, ...]}``)."""

    status_code = 400
