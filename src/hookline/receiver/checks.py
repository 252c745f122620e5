"""Checks both signature schemes share: header lookup and the timestamp window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from .errors import Expired, MissingHeader


class HeaderSource(Protocol):
    """Anything with ``items()`` yielding ``(name, value)`` pairs: a dict, or the headers
    object of Starlette, Werkzeug or Django."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def normalize_headers(headers: HeaderSource) -> dict[str, str]:
    """Lower-cased names; repeated fields joined with ``", "`` as HTTP defines."""
    normalized: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        normalized[key] = f"{normalized[key]}, {value}" if key in normalized else value
    return normalized


def require_headers(headers: Mapping[str, str], *names: str) -> None:
    """Raise :class:`MissingHeader` naming every absent or empty header of ``names``."""
    missing = [name for name in names if not headers.get(name)]
    if missing:
        raise MissingHeader(f"missing header(s): {', '.join(missing)}")


def check_timestamp(timestamp: int, *, now: int, tolerance: int, what: str) -> None:
    """Raise :class:`Expired` unless ``timestamp`` is within ``tolerance`` s of ``now``."""
    if timestamp < now - tolerance:
        raise Expired(f"{what} {timestamp} is more than {tolerance}s old (now {now})")
    if timestamp > now + tolerance:
        raise Expired(f"{what} {timestamp} is more than {tolerance}s in the future (now {now})")
