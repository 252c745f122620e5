"""Wake-ups: how a publish or a webhook change reaches the delivery workers without polling.

In one process (SQLite) this is a direct call; PostgreSQL deployments relay the same notices
with LISTEN/NOTIFY. Workers also poll log heads slowly as a safety net for missed notices.
"""

from __future__ import annotations

from typing import Protocol

from hookline.domain.events import Published


class Listener(Protocol):
    def on_published(self, notice: Published) -> None: ...

    def on_webhook_changed(self, webhook_id: str) -> None: ...


class Wakeups:
    """Fans notices out to the listeners of this process. Calls must not block."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def published(self, notice: Published | None) -> None:
        if notice is None:
            return
        for listener in self._listeners:
            listener.on_published(notice)

    def webhook_changed(self, webhook_id: str) -> None:
        for listener in self._listeners:
            listener.on_webhook_changed(webhook_id)
