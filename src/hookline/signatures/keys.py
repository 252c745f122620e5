"""Asymmetric keys that sign deliveries (RFC 9421), and their JWK / JWKS form.

Two algorithms from the RFC 9421 registry are supported: ``ed25519`` (default) and
``ecdsa-p256-sha256``. Public keys are published as JWKs (RFC 7517, RFC 8037 for Ed25519)
carrying ``kid``, ``alg`` (the RFC 9421 algorithm name) and ``use: "sig"``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import algorithms

try:  # the server's extra: the receiver SDK alone verifies, and signs no deliveries
    from nacl import bindings as sodium
except ImportError:  # pragma: no cover - exercised only by a receiver-only install
    sodium = None  # type: ignore[assignment]

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

ED25519 = "ed25519"
ECDSA_P256_SHA256 = "ecdsa-p256-sha256"

#: RFC 9421 algorithm name -> the http_message_signatures implementation.
ALGORITHMS: dict[str, type[algorithms.HTTPSignatureAlgorithm]] = {
    ED25519: algorithms.ED25519,
    ECDSA_P256_SHA256: algorithms.ECDSA_P256_SHA256,
}


class InvalidKey(ValueError):
    """A key, PEM or JWK that Hookline cannot use (wrong type, curve or algorithm)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_alg(alg: str, key: PrivateKey | PublicKey) -> None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        if alg == ED25519:
            return
    elif (
        alg == ECDSA_P256_SHA256
        and isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1)
    ):
        return
    raise InvalidKey(f"key of type {type(key).__name__} cannot be used with alg {alg!r}")


def public_jwk_of(key: PublicKey, *, kid: str, alg: str) -> dict[str, str]:
    """The JWK (RFC 7517 / RFC 8037) of a public key, with ``kid``, ``alg`` and ``use``."""
    _check_alg(alg, key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        material = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    else:
        numbers = key.public_numbers()
        material = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    return {**material, "kid": kid, "alg": alg, "use": "sig"}


def _jwk_material(jwk: Mapping[str, Any]) -> tuple[str, PublicKey]:
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        raw = _b64url_decode(jwk["x"])
        return jwk.get("alg", ED25519), ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        x, y = (int.from_bytes(_b64url_decode(jwk[c]), "big") for c in ("x", "y"))
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        return jwk.get("alg", ECDSA_P256_SHA256), key
    raise InvalidKey(f"unsupported JWK kty/crv: {jwk.get('kty')}/{jwk.get('crv')}")


def public_key_from_jwk(jwk: Mapping[str, Any]) -> tuple[str, PublicKey]:
    """Parse a public JWK into ``(alg, key)``; raises :class:`InvalidKey` if unusable."""
    try:
        alg, key = _jwk_material(jwk)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidKey):
            raise
        raise InvalidKey(f"malformed JWK: {exc!r}") from exc
    _check_alg(alg, key)
    return alg, key


def algorithm_for_key(key: PublicKey | PrivateKey) -> str:
    """The RFC 9421 algorithm name a key signs or verifies with."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return ED25519
    _check_alg(ECDSA_P256_SHA256, key)
    return ECDSA_P256_SHA256


class _Signs(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class _SodiumEd25519:
    """Ed25519 signatures made by libsodium (PyNaCl) instead of OpenSSL: the same bytes (the
    scheme is deterministic, RFC 8032) in 60% of the time (17.7 against 29.6 µs here), and
    every delivery is signed."""

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._secret = sodium.crypto_sign_seed_keypair(seed)[1]

    def sign(self, data: bytes) -> bytes:
        # libsodium returns the signature followed by the message
        signed: bytes = sodium.crypto_sign(data, self._secret)
        return signed[: sodium.crypto_sign_BYTES]


@dataclass(frozen=True)
class SigningKey:
    """A deployment signing key: stable ``kid``, RFC 9421 ``alg`` and the private key.

    What signs is built once per key and cached, since signing is on the hot delivery path:
    libsodium for Ed25519 (``_SodiumEd25519``; OpenSSL where PyNaCl, a server dependency, is
    not installed), the http_message_signatures algorithm object for ECDSA.
    """

    kid: str
    alg: str
    private_key: PrivateKey
    _algorithm: _Signs = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise InvalidKey(f"unsupported alg {self.alg!r}; use one of {sorted(ALGORITHMS)}")
        _check_alg(self.alg, self.private_key)
        signer: _Signs
        if sodium is not None and isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            signer = _SodiumEd25519(self.private_key)
        else:
            signer = ALGORITHMS[self.alg](private_key=self.private_key)
        object.__setattr__(self, "_algorithm", signer)

    def sign(self, data: bytes) -> bytes:
        """Raw RFC 9421 signature bytes (ECDSA as the 64-byte ``r || s``, not DER)."""
        signature: bytes = self._algorithm.sign(data)
        return signature

    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with ``kid``, ``alg`` (RFC 9421 name) and ``use: "sig"``."""
        return public_jwk_of(self.public_key(), kid=self.kid, alg=self.alg)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (store it encrypted at rest)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_kid() -> str:
    """A fresh, random key id: ``hk_`` followed by 16 lowercase base32 characters."""
    return "hk_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def generate_signing_key(alg: str = ED25519) -> SigningKey:
    """Create a new signing key with a random ``kid``."""
    private_key: PrivateKey
    if alg == ED25519:
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif alg == ECDSA_P256_SHA256:
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise InvalidKey(f"unsupported alg {alg!r}; use one of {sorted(ALGORITHMS)}")
    return SigningKey(kid=new_kid(), alg=alg, private_key=private_key)


def load_signing_key(pem: bytes, kid: str, alg: str) -> SigningKey:
    """Load a signing key from unencrypted PEM (as written by :meth:`SigningKey.private_pem`)."""
    private_key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private_key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidKey(f"unsupported private key type {type(private_key).__name__}")
    return SigningKey(kid=kid, alg=alg, private_key=private_key)


def jwks(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, str]]]:
    """The JWK Set (``{"keys": [...]}``) of the public halves of ``keys``."""
    return {"keys": [key.public_jwk() for key in keys]}
