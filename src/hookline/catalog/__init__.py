"""The event catalogue: every known event type (JSON Schemas for objects come later)."""

from hookline.catalog.types import CATEGORIES, EVENT_TYPES, is_known_type

__all__ = ["CATEGORIES", "EVENT_TYPES", "is_known_type"]
