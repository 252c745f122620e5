"""Webhook subscription rules (SPEC section 2): URL, categories, batching config, filters."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from hookline.catalog import CATEGORIES
from hookline.errors import ValidationFailed
from hookline.signatures.rfc9421 import is_encoded_uri

ALL = "ALL"
DELAY_PATTERN = re.compile(r"^[1-9][0-9]?[sm]$")
DEFAULT_DELAY = "1s"
DEFAULT_MAX_PACKAGE_SIZE = 10240
MIN_PACKAGE_SIZE = 100
MAX_PACKAGE_SIZE = 1_048_576
MAX_URL_LENGTH = 1000
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)


def delay_seconds(delay: str, *, field: str = "config.delay") -> int:
    """``"5s"`` -> 5, ``"2m"`` -> 120; the pattern is ``^[1-9][0-9]?[sm]$``."""
    if not isinstance(delay, str) or not DELAY_PATTERN.fullmatch(delay):
        raise ValidationFailed("delay must match ^[1-9][0-9]?[sm]$ (e.g. 1s, 30s, 5m)", field=field)
    amount = int(delay[:-1])
    return amount * 60 if delay.endswith("m") else amount


def check_package_size(size: object, *, field: str = "config.max_package_size") -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValidationFailed("must be an integer number of bytes", field=field)
    if not MIN_PACKAGE_SIZE <= size <= MAX_PACKAGE_SIZE:
        raise ValidationFailed(
            f"must be between {MIN_PACKAGE_SIZE} and {MAX_PACKAGE_SIZE} bytes", field=field
        )
    return size


def _is_ip_literal(host: str) -> bool:
    """An IP address in any spelling resolvers accept: ``10.0.0.1.``, ``127.1``, ``0x7f.1``."""
    host = host.strip("[]").rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]))
    return True


def _is_dns_name(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and len(labels) >= 2 and all(_HOST_LABEL.match(x) for x in labels)


def check_url(url: object, *, allow_insecure: bool, field: str = "url") -> str:
    """An https URL to a DNS name, without userinfo or fragment (dev mode relaxes scheme/host)."""
    if not isinstance(url, str) or not url:
        raise ValidationFailed("must be a non-empty string", field=field)
    if len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(f"must be at most {MAX_URL_LENGTH} characters", field=field)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValidationFailed(f"not a valid URL: {exc}", field=field) from None
    allowed = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in allowed:
        raise ValidationFailed(f"scheme must be {' or '.join(allowed)}", field=field)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationFailed("must not contain user info", field=field)
    if parts.fragment or url.endswith("#"):
        raise ValidationFailed("must not contain a fragment", field=field)
    if not host:
        raise ValidationFailed("must have a host", field=field)
    if not allow_insecure and (_is_ip_literal(host) or not _is_dns_name(host)):
        raise ValidationFailed("host must be a DNS name, not an IP address", field=field)
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValidationFailed("must not contain white space or control characters", field=field)
    if not is_encoded_uri(url):
        raise ValidationFailed(
            "must be an encoded URL (RFC 3986): percent-encode other characters as %XX",
            field=field,
        )
    return url


def check_categories(types: Sequence[str], exclude: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate ``type`` / ``exclude_type``; ``ALL`` stands alone, exclusions need ``ALL``."""
    types, exclude = list(types), list(exclude)
    if not types:
        raise ValidationFailed("must list ALL or at least one category", field="type")
    for field, values in (("type", types), ("exclude_type", exclude)):
        for value in values:
            if value != ALL and value not in CATEGORIES:
                raise ValidationFailed(f"unknown category {value!r}", field=field)
        if len(set(values)) != len(values):
            raise ValidationFailed("categories must not repeat", field=field)
    if ALL in types and len(types) > 1:
        raise ValidationFailed("ALL cannot be combined with other categories", field="type")
    if ALL in exclude:
        raise ValidationFailed("ALL cannot be excluded", field="exclude_type")
    if exclude and ALL not in types:
        raise ValidationFailed(
            "exclude_type is only meaningful with type [ALL]", field="exclude_type"
        )
    return types, exclude


@dataclass(frozen=True, slots=True)
class CategoryFilter:
    """Which categories a webhook receives: everything, or a set; minus exclusions."""

    include: frozenset[str] | None  # None means ALL
    exclude: frozenset[str]

    @classmethod
    def of(cls, types: Sequence[str], exclude: Sequence[str]) -> CategoryFilter:
        include = None if ALL in types else frozenset(types)
        return cls(include=include, exclude=frozenset(exclude))

    @property
    def everything(self) -> bool:
        return self.include is None and not self.exclude

    def matches(self, category: str) -> bool:
        if category in self.exclude:
            return False
        return self.include is None or category in self.include


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """The tenant-controlled part of a webhook, validated as a whole."""

    title: str
    url: str
    types: tuple[str, ...] = (ALL,)
    exclude_types: tuple[str, ...] = ()
    enabled: bool = True
    delay: str = DEFAULT_DELAY
    max_package_size: int = DEFAULT_MAX_PACKAGE_SIZE

    def validated(self, *, allow_insecure: bool) -> WebhookSpec:
        """This spec, or a ValidationFailed naming the first bad field."""
        title = self.title.strip() if isinstance(self.title, str) else ""
        if not 1 <= len(title) <= 100:
            raise ValidationFailed("title must be 1..100 characters", field="title")
        if not title.isprintable():
            raise ValidationFailed("title must not contain control characters", field="title")
        check_url(self.url, allow_insecure=allow_insecure)
        types, exclude = check_categories(self.types, self.exclude_types)
        delay_seconds(self.delay)
        check_package_size(self.max_package_size)
        return WebhookSpec(
            title,
            self.url,
            tuple(types),
            tuple(exclude),
            self.enabled,
            self.delay,
            self.max_package_size,
        )

    @property
    def delay_timedelta(self) -> timedelta:
        return timedelta(seconds=delay_seconds(self.delay))

    @property
    def category_filter(self) -> CategoryFilter:
        return CategoryFilter.of(self.types, self.exclude_types)
