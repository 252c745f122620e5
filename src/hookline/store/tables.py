"""The schema, as SQLAlchemy Core tables. Alembic migrations must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite keeps naive UTC text underneath).

    On SQLite the text is written and read with ``isoformat``/``fromisoformat`` (C) instead of
    SQLAlchemy's DATETIME processors (a format string one way, a regular expression the other),
    in the very format those use, ``YYYY-MM-DD HH:MM:SS.ffffff``, so stored values compare and
    sort as before. The worker reads a timestamp with every event it sends."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_datetime
        if dialect.driver == "asyncpg":
            # asyncpg hands ``timestamptz`` back as aware datetimes in UTC already: no call
            # per value (the worker's window reads return a timestamp with every event).
            return None
        return super().result_processor(dialect, coltype)


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(" ", timespec="microseconds")


def _sqlite_datetime(value: str | None) -> datetime | None:
    return None if value is None else _as_utc(datetime.fromisoformat(value))


def _as_utc(moment: datetime) -> datetime:
    """Naive values are UTC (how both backends store them); aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


ID = String(36)

tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The log's head: the last sequence number and created_at handed out for this tenant.
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_created_at", UTCDateTime, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("tenant_id", ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", ID, nullable=False),
    Column("type", String(130), nullable=False),
    Column("category", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("object", Text, nullable=False),  # exact JSON text, sent as is
    Column("size", Integer, nullable=False),  # bytes on the wire inside a package
    UniqueConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "category", "seq"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, ForeignKey("tenants.id"), nullable=False),
    Column("title", String(100), nullable=False),
    Column("url", String(1000), nullable=False),
    Column("types", JSON, nullable=False),
    Column("exclude_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("delay", String(3), nullable=False),
    Column("max_package_size", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
    Column("disabled_reason", String(200), nullable=True),
    Index(None, "tenant_id", "created_at"),
)

# Delivery state of one webhook: its cursor over the tenant's log, its open package, its lease.
webhook_state = Table(
    "webhook_state",
    metadata,
    Column("webhook_id", ID, ForeignKey("webhooks.id"), primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("cursor_seq", BigInteger, nullable=False),  # last seq taken into a package
    Column("open_package_id", ID, nullable=True),  # the package being delivered, if any
    Column("failing_since", UTCDateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Index(None, "lease_until"),
)

packages = Table(
    "packages",
    metadata,
    Column("id", ID, primary_key=True),  # UUIDv7: time-ordered; sent as webhook-id
    Column("tenant_id", ID, nullable=False),
    Column("webhook_id", ID, nullable=False),
    Column("kind", String(8), nullable=False),  # queue | test
    Column("status", String(12), nullable=False),  # pending | delivered | failed | dropped
    Column("first_seq", BigInteger, nullable=True),
    Column("last_seq", BigInteger, nullable=True),
    Column("event_seqs", JSON, nullable=False),
    Column("event_ids", JSON, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Index(None, "webhook_id", "id"),
    # No index on status: a package's status changes after every attempt, and an index on it
    # would make each such update write a new entry in every index (not a heap-only "HOT"
    # update) on PostgreSQL, where migration 0004 also leaves room on each page for HOT.
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", ID, primary_key=True),  # UUIDv7
    Column("tenant_id", ID, nullable=False),
    Column("webhook_id", ID, nullable=False),
    Column("package_id", ID, nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("trigger", String(12), nullable=False),  # scheduled | test
    Column("url", String(1000), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("response_headers", JSON, nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Index(None, "webhook_id", "id"),
)

# Standard Webhooks secrets of a webhook; during a rotation the old one lives until expires_at.
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("webhook_id", ID, ForeignKey("webhooks.id"), nullable=False, index=True),
    Column("secret", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)

# The deployment's RFC 9421 signing keys; the newest unexpired one signs, all unexpired verify.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(32), nullable=False),
    Column("private_key", Text, nullable=False),  # PEM, encrypted at rest (see signing docs)
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
)

# Live delivery workers: each heartbeats so the others can compute a fair share of webhooks.
workers = Table(
    "workers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# Idempotency-Key records of POST requests: the first response, replayed for the key's lifetime.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of method, target and body
    Column("state", String(12), nullable=False),  # in_progress | done
    Column("status", Integer, nullable=True),
    Column("headers", JSON, nullable=True),  # [[name, value], ...] of the first response
    Column("body", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Public keys registered for API keys: requests with such a key must carry an RFC 9421
# signature made with the matching private key.
api_key_public_keys = Table(
    "api_key_public_keys",
    metadata,
    Column("key_id", ID, ForeignKey("api_keys.id"), primary_key=True),
    Column("alg", String(32), nullable=False),
    Column("public_key", Text, nullable=False),  # PEM (SubjectPublicKeyInfo)
    Column("created_at", UTCDateTime, nullable=False),
)
