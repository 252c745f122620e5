"""Settings, read once from ``HOOKLINE_*`` environment variables and validated at start."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> timedelta:
    """Parse ``"30d"``, ``"15s"``, ``"500ms"`` or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 15s, 10m, 24h, 30d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_subnets(value: object) -> tuple[Subnet, ...]:
    """``"10.1.0.0/16, fd00::/8"`` (or a list) into networks; a bare address is a /32 or /128."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError("give comma-separated CIDR subnets, e.g. 10.20.0.0/16,fd00:1::/64")
    try:
        return tuple(ipaddress.ip_network(str(part).strip()) for part in value)
    except ValueError as exc:
        raise ValueError(f"not a CIDR subnet: {exc}") from None


def default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / 'hookline.db'}"


class Settings(BaseSettings):
    """Every knob of a Hookline process. Durations accept ``500ms``, ``15s``, ``10m``, ``30d``."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    allow_insecure_targets: bool = False
    open_catalog: bool = False

    # delivery
    connect_timeout: timedelta = timedelta(seconds=5)
    request_timeout: timedelta = timedelta(seconds=15)
    max_concurrency: int = Field(default=256, ge=1, le=10_000)
    max_package_events: int = Field(default=2000, ge=1, le=100_000)
    retry_max_attempts: int = Field(default=0, ge=0)
    retry_max_age: timedelta = timedelta(0)
    retry_after_max: timedelta = timedelta(seconds=600)
    disable_after: timedelta = timedelta(days=30)
    response_excerpt_bytes: int = Field(default=1024, ge=0, le=65536)
    source_address: str | None = None
    # Private subnets deliveries may reach although the SSRF guard refuses them otherwise.
    allowed_subnets: Annotated[tuple[Subnet, ...], NoDecode] = ()
    lease_duration: timedelta = timedelta(seconds=60)
    resync_interval: timedelta = timedelta(seconds=30)

    # signing (see docs/signatures.md)
    secret_key: str | None = Field(default=None, min_length=16)
    signing_key_file: Path | None = None
    signing_alg: Literal["ed25519", "ecdsa-p256-sha256"] = "ed25519"
    signing_key_overlap: timedelta = timedelta(days=7)
    secret_rotation_overlap: timedelta = timedelta(hours=24)
    sign_v1a: bool = False

    # retention (0 keeps forever); see docs/operations.md
    retention_events: timedelta = timedelta(days=30)
    retention_history: timedelta = timedelta(days=30)
    retention_interval: timedelta = timedelta(minutes=10)
    retention_batch: int = Field(default=5000, ge=100, le=100_000)

    # api (see docs/security.md)
    max_events_per_publish: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=1024**3)
    max_url_bytes: int = Field(default=8192, ge=256, le=1024 * 1024)
    max_header_bytes: int = Field(default=16384, ge=1024, le=1024 * 1024)
    rate_limit: float = Field(default=0.0, ge=0)  # requests/s per tenant and process; 0 = off
    rate_limit_burst: int = Field(default=0, ge=0)  # 0 = twice the rate (at least 1)
    idempotency_ttl: timedelta = timedelta(hours=24)
    idempotency_sweep_interval: timedelta = timedelta(minutes=10)
    signature_max_skew: timedelta = timedelta(minutes=5)

    @field_validator(
        "connect_timeout",
        "request_timeout",
        "retry_max_age",
        "retry_after_max",
        "disable_after",
        "lease_duration",
        "resync_interval",
        "signing_key_overlap",
        "secret_rotation_overlap",
        "retention_events",
        "retention_history",
        "retention_interval",
        "idempotency_ttl",
        "idempotency_sweep_interval",
        "signature_max_skew",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("allowed_subnets", mode="before")
    @classmethod
    def _subnets(cls, value: object) -> tuple[Subnet, ...]:
        return parse_subnets(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme, separator, _ = value.partition("://")
        if not separator or scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("lease_duration")
    @classmethod
    def _lease_minimum(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=5):
            raise ValueError("must be at least 5s (and exceed the HTTP request timeout)")
        return value

    @model_validator(mode="after")
    def _lease_outlives_attempts(self) -> Settings:
        # Workers renew leases every lease/3; a lease must still outlast one whole attempt, or
        # a second worker could claim a webhook mid-delivery and break its order.
        if self.lease_duration <= self.request_timeout:
            raise ValueError("HOOKLINE_LEASE_DURATION must exceed HOOKLINE_REQUEST_TIMEOUT")
        return self
