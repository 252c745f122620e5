"""The deployment's signing keys: where they live, how they rotate, which ones are published.

Two homes, chosen by configuration:
- ``HOOKLINE_SIGNING_KEY_FILE``: PEM private keys in a file the operator manages (mode 0600);
  the first signs, the others are published. ``hookline keys rotate-signing`` puts a new key
  first and notes "published until <date>" (the overlap) above the previous ones.
- otherwise the ``signing_keys`` table, each key encrypted (Fernet) with a key derived from
  ``HOOKLINE_SECRET_KEY``; on SQLite without it, a random one is kept in ``<database>.key``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import make_url

from hookline.config import Settings
from hookline.errors import ConfigError
from hookline.ids import utcnow
from hookline.signatures.keys import (
    ED25519,
    InvalidKey,
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


def _write_temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new file (mode 0600) next to ``path``, fully written and synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, readable by the owner only."""
    temporary = _write_temporary(path, data)
    temporary.replace(path)


def _create_private(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` (mode 0600) unless it exists: of processes starting
    together, exactly one creates it and all then read the same content."""
    temporary = _write_temporary(path, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)
_PUBLISHED_UNTIL = re.compile(rb"published until (\S+)")


@dataclass(frozen=True)
class _FileEntry:
    """One PEM block of the key file, with the end of its publication if it was retired."""

    pem: bytes
    until: datetime | None


def _file_entries(path: Path) -> list[_FileEntry]:
    """The PEM blocks of the key file, in order. Text before a block (RFC 7468 "explanatory
    text") may say ``published until <ISO 8601>``; ``rotate()`` writes that for old keys."""
    data = path.read_bytes()
    entries, previous_end = [], 0
    for match in _PEM_BLOCK.finditer(data):
        note = _PUBLISHED_UNTIL.search(data[previous_end : match.start()])
        previous_end = match.end()
        until = None
        if note is not None:
            try:
                until = datetime.fromisoformat(note.group(1).decode("ascii"))
            except ValueError:
                raise ConfigError(f"{path}: bad date in {note.group(0)!r}") from None
        entries.append(_FileEntry(match.group(0) + b"\n", until))
    return entries


def _key_of(path: Path, pem: bytes) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise InvalidKey(f"unsupported key type {type(private).__name__}")
        alg = algorithm_for_key(private)
        unnamed = SigningKey(kid="pending", alg=alg, private_key=private)
    except (ValueError, TypeError) as exc:  # InvalidKey is a ValueError
        raise ConfigError(
            f"{path}: cannot use a key in it (unencrypted PKCS#8 Ed25519 or P-256 needed): {exc}"
        ) from None
    return SigningKey(kid=thumbprint_kid(unnamed), alg=alg, private_key=private)


def _file_keys(path: Path, alg: str) -> list[SigningKey]:
    """The first key of the file (it signs) and the retired ones still published."""
    if not path.exists():
        _create_private(path, _pem_of_new(alg))
    entries = _file_entries(path)
    if not entries:
        raise ConfigError(f"{path} holds no PEM private key")
    now = utcnow()
    live = [entries[0]] + [e for e in entries[1:] if e.until is None or e.until > now]
    return [_key_of(path, entry.pem) for entry in live]


def _rotate_file(path: Path, alg: str, overlap: timedelta) -> None:
    """Put a new key first; the others stay published for ``overlap`` (or until the date
    already noted for them) and are dropped from the file once past it."""
    now = utcnow()
    entries = _file_entries(path) if path.exists() else []
    parts = [_pem_of_new(alg)]
    for entry in entries:
        until = entry.until or now + overlap
        if until > now:
            note = f"Retired signing key, published until {until.isoformat()}\n"
            parts.append(note.encode("ascii") + entry.pem)
    _write_private(path, b"".join(parts))


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
            _create_private(key_path, base64.urlsafe_b64encode(os.urandom(32)))
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
            keys = _file_keys(self.settings.signing_key_file, self.settings.signing_alg)
        else:
            keys = await self._db_keys(utcnow())
            if not keys:
                await self._create_first()
                keys = await self._db_keys(utcnow())
        if self.settings.sign_v1a and keys[0].alg != ED25519:
            raise ConfigError(
                f"HOOKLINE_SIGN_V1A needs an ed25519 signing key; the current key "
                f"{keys[0].kid} is {keys[0].alg}"
            )
        return keys

    async def _create_first(self) -> None:
        """Create the first key unless a process starting at the same time just did."""
        key = generate_signing_key(self.settings.signing_alg)
        token = _fernet(self.settings).encrypt(key.private_pem()).decode()
        now = utcnow()
        async with self.db.write() as conn:  # BEGIN IMMEDIATE on SQLite: one writer at a time
            if not self.db.is_sqlite:
                await conn.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))
            live = signing_keys.c.expires_at.is_(None) | (signing_keys.c.expires_at > now)
            query = select(func.count()).select_from(signing_keys).where(live)
            count = (await conn.execute(query)).scalar_one()
            if count:
                return
            await conn.execute(
                insert(signing_keys).values(
                    kid=key.kid, alg=key.alg, private_key=token, created_at=now
                )
            )

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
            _rotate_file(path, self.settings.signing_alg, self.settings.signing_key_overlap)
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
