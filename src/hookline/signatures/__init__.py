"""Sender-side delivery signatures: RFC 9421 HTTP Message Signatures and Standard Webhooks.

Pure functions and values (no I/O): the delivery worker calls :func:`sign_package` for every
attempt; the API publishes :func:`jwks` of the current and previous :class:`SigningKey`.
"""

from .digest import content_digest, digest_matches
from .keys import (
    ALGORITHMS,
    ECDSA_P256_SHA256,
    ED25519,
    InvalidKey,
    PublicKey,
    SigningKey,
    algorithm_for_key,
    generate_signing_key,
    jwks,
    load_signing_key,
    public_key_from_jwk,
)
from .rfc9421 import COVERED_COMPONENTS, LABEL, HTTPRequestView, canonical_target_uri
from .sign import package_request, sign_package
from .standard import generate_secret, sign_v1, signature_header, verify_v1

__all__ = [
    "ALGORITHMS",
    "COVERED_COMPONENTS",
    "ECDSA_P256_SHA256",
    "ED25519",
    "LABEL",
    "HTTPRequestView",
    "InvalidKey",
    "PublicKey",
    "SigningKey",
    "algorithm_for_key",
    "canonical_target_uri",
    "content_digest",
    "digest_matches",
    "generate_secret",
    "generate_signing_key",
    "jwks",
    "load_signing_key",
    "package_request",
    "public_key_from_jwk",
    "sign_package",
    "sign_v1",
    "signature_header",
    "verify_v1",
]
