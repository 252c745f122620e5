"""Event types of the reference investment API, plus Hookline's own ``WEBHOOK`` category."""

from __future__ import annotations

_LIFECYCLE = ("CREATED", "ACTIVATED", "CLOSING_INITIATED", "CLOSED", "LOCKED", "UPDATED")
_PAYMENT = ("NEW", "PROCESSING", "CONFIRMED", "CANCELLED")

_ACTIONS: dict[str, tuple[str, ...]] = {
    "USER": (
        "CREATED",
        "ACTIVATED",
        "DEACTIVATED",
        "DATA_CHANGED",
        "DATA_CHANGE_FAILED",
        "OFFBOARDING_INITIATED",
        "OFFBOARDED",
    ),
    "USER_CHECK": ("CREATED", "PASSED", "FAILED"),
    "ORDER": ("NEW", "PROCESSING", "FILLED", "CANCELLED"),
    "ORDER_CANCELLATION": ("REJECTED",),
    "EXECUTION": ("FILLED", "SETTLED", "CANCELLED"),
    "POSITION": ("UPDATED",),
    "CASH_BALANCE": ("UPDATED",),
    "CASH_TRANSACTION": ("EXECUTED",),
    "SECURITY_TRANSACTION": ("EXECUTED",),
    "ACCOUNT": _LIFECYCLE,
    "ACCOUNT_GROUP": _LIFECYCLE,
    "DIRECT_DEBIT": _PAYMENT,
    "WITHDRAWAL": _PAYMENT,
    "PORTFOLIO_ORDER": ("NEW", "PROCESSING", "FILLED", "SETTLED", "CANCELLED"),
    "PORTFOLIO_ALLOCATION": ("CREATED", "CHANGED"),
    "ACCOUNT_VALUATION": ("CREATED",),
    "INTRADAY_ACCOUNT_VALUATION": ("CREATED",),
    "ACCOUNT_RETURNS": ("CREATED",),
    "REPORT": ("CREATED",),
    "TREASURY_REPORT": ("CREATED",),
    "ACCOUNT_LIQUIDATION": ("NEW", "PROCESSING", "FILLED", "CANCELLED", "SETTLED"),
    "VIRTUAL_CASH_INCREASE": ("ISSUED", "CONFIRMED"),
    "VIRTUAL_CASH_DECREASE": ("ISSUED", "CONFIRMED", "QUEUED", "CANCELLED"),
    "FEE_COLLECTION": ("CREATED", "FINALISED", "CANCELLED"),
    "WEBHOOK": ("TEST", "DISABLED"),
}

CATEGORIES: frozenset[str] = frozenset(_ACTIONS)
EVENT_TYPES: frozenset[str] = frozenset(
    f"{category}.{action}" for category, actions in _ACTIONS.items() for action in actions
)


def is_known_type(event_type: str) -> bool:
    """Whether ``event_type`` (``CATEGORY.ACTION``) is in the catalogue."""
    return event_type in EVENT_TYPES
