"""Verification of the Standard Webhooks signature (``webhook-signature``, ``v1`` HMAC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hookline.signatures.standard import verify_v1

from .checks import check_timestamp, require_headers
from .errors import BadSignature


def verify_standard_webhooks(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Sequence[str],
    now: int,
    tolerance: int,
) -> None:
    """Check ``webhook-timestamp`` and that a ``v1`` entry matches one of ``secrets``.

    ``headers`` must have lower-case names (see :func:`checks.normalize_headers`).
    """
    require_headers(headers, "webhook-id", "webhook-timestamp", "webhook-signature")
    raw_timestamp = headers["webhook-timestamp"].strip()
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        raise BadSignature(f"webhook-timestamp is not Unix seconds: {raw_timestamp!r}")
    check_timestamp(int(raw_timestamp), now=now, tolerance=tolerance, what="webhook-timestamp")
    if not verify_v1(
        secrets, headers["webhook-id"], raw_timestamp, body, headers["webhook-signature"]
    ):
        raise BadSignature("no v1 entry of webhook-signature matches the secret(s)")
