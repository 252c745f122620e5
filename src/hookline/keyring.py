"""The deployment's signing keys: where they live, how they rotate, which ones are published.

Two homes, chosen by configuration:
- ``HOOKLINE_SIGNING_KEY_FILE``: PEM private keys in a file the operator manages; the first
  signs, all are published. ``hookline keys rotate-signing`` puts a new key first.
- otherwise the ``signing_keys`` table, each key encrypted (Fernet) with a key derived from
  ``HOOKLINE_SECRET_KEY``; on SQLite without it, a random one is kept in ``<database>.key``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from hookline.config import Settings
from hookline.errors import ConfigError
from hookline.ids import utcnow
from hookline.signatures.keys import (
    SigningKey,
    algorithm_for_key,
    generate_signing_key,
    load_signing_key,
)
from hookline.store.db import Database
from hookline.store.tables import signing_keys


def thumbprint_kid(key: SigningKey) -> str:
    """A kid derived from the public key (RFC 7638 style), stable for a key kept in a file."""
    jwk = key.public_jwk()
    members = {k: v for k, v in sorted(jwk.items()) if k in ("crv", "kty", "x", "y")}
    canonical = ",".join(f'"{k}":"{v}"' for k, v in members.items())
    digest = hashlib.sha256(("{" + canonical + "}").encode()).digest()
    return "hk_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]


# --- the key file -----------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    temporary.replace(path)


def _file_keys(path: Path, alg: str) -> list[SigningKey]:
    if not path.exists():
        _write_private(path, _pem_of_new(alg))
    blocks = path.read_bytes().split(b"-----END PRIVATE KEY-----")
    keys = []
    for block in blocks:
        if b"-----BEGIN" not in block:
            continue
        pem = block.strip() + b"\n-----END PRIVATE KEY-----\n"
        private = serialization.load_pem_private_key(pem, password=None)
        alg_of = algorithm_for_key(private)  # type: ignore[arg-type]
        unnamed = load_signing_key(pem, "pending", alg_of)
        keys.append(load_signing_key(pem, thumbprint_kid(unnamed), alg_of))
    if not keys:
        raise ConfigError(f"{path} holds no PEM private key")
    return keys


def _pem_of_new(alg: str) -> bytes:
    return generate_signing_key(alg).private_pem()


# --- the database -----------------------------------------------------------------------


def _fernet(settings: Settings) -> Fernet:
    secret = settings.secret_key
    if secret is None:
        url = make_url(settings.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or ":memory:" in url.database:
            raise ConfigError(
                "HOOKLINE_SECRET_KEY must be set (the same in every process) to keep signing "
                "keys encrypted in the database, or set HOOKLINE_SIGNING_KEY_FILE"
            )
        key_path = Path(url.database + ".key")
        if not key_path.exists():
            _write_private(key_path, base64.urlsafe_b64encode(os.urandom(32)))
        secret = key_path.read_text().strip()
    derived = hashlib.sha256(b"hookline-signing-keys:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


class Keyring:
    """Loads, creates and rotates signing keys; ``current`` signs, ``published`` verify."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    async def load(self) -> list[SigningKey]:
        """Keys in force, the signing one first (created on first use)."""
        if self.settings.signing_key_file is not None:
            return _file_keys(self.settings.signing_key_file, self.settings.signing_alg)
        keys = await self._db_keys(utcnow())
        if not keys:
            await self.rotate()
            keys = await self._db_keys(utcnow())
        return keys

    async def _db_keys(self, now: datetime) -> list[SigningKey]:
        fernet = _fernet(self.settings)
        query = (
            select(signing_keys)
            .where(signing_keys.c.expires_at.is_(None) | (signing_keys.c.expires_at > now))
            .order_by(signing_keys.c.created_at.desc())
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        try:
            return [
                load_signing_key(fernet.decrypt(row.private_key.encode()), row.kid, row.alg)
                for row in rows
            ]
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt the signing keys: HOOKLINE_SECRET_KEY differs from the one "
                "they were stored with"
            ) from None

    async def rotate(self) -> SigningKey:
        """Make a new key the signing one; the previous ones stay published for the overlap."""
        if self.settings.signing_key_file is not None:
            path = self.settings.signing_key_file
            existing = path.read_bytes() if path.exists() else b""
            _write_private(path, _pem_of_new(self.settings.signing_alg) + existing)
            return _file_keys(path, self.settings.signing_alg)[0]
        key = generate_signing_key(self.settings.signing_alg)
        now = utcnow()
        token = _fernet(self.settings).encrypt(key.private_pem()).decode()
        async with self.db.write() as conn:
            await conn.execute(
                update(signing_keys)
                .where(signing_keys.c.expires_at.is_(None))
                .values(expires_at=now + self.settings.signing_key_overlap)
            )
            await conn.execute(
                insert(signing_keys).values(
                    kid=key.kid, alg=key.alg, private_key=token, created_at=now
                )
            )
        return key
