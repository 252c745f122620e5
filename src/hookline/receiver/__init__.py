"""Hookline receiver SDK: verify, parse and de-duplicate the webhooks Hookline delivers.

Needs only the standard library, ``cryptography`` and ``http_message_signatures``. Framework
adapters live in :mod:`hookline.receiver.fastapi`, :mod:`hookline.receiver.flask` and
:mod:`hookline.receiver.django` and import their framework only when you import them.

    from hookline.receiver import verify, VerificationError

    try:
        events = verify(request_headers, raw_body, secret="whsec_...")
    except VerificationError as exc:
        return exc.status_code  # 400 or 401; Hookline will retry
"""

from .dedupe import MemorySeenStore, SeenStore, SQLiteSeenStore, dedupe
from .errors import (
    BadDigest,
    BadPayload,
    BadSignature,
    Expired,
    MissingHeader,
    UnknownKey,
    VerificationError,
)
from .events import Event, parse_event, parse_package
from .jwks import JWKSClient, fetch_jwks, keys_from_jwks
from .verify import WebhookVerifier, verify

__all__ = [
    "BadDigest",
    "BadPayload",
    "BadSignature",
    "Event",
    "Expired",
    "JWKSClient",
    "MemorySeenStore",
    "MissingHeader",
    "SQLiteSeenStore",
    "SeenStore",
    "UnknownKey",
    "VerificationError",
    "WebhookVerifier",
    "dedupe",
    "fetch_jwks",
    "keys_from_jwks",
    "parse_event",
    "parse_package",
    "verify",
]
