"""Wake-ups: how a publish or a webhook change reaches the delivery workers without polling.

In one process (SQLite) a notice is a direct call to the listeners. With PostgreSQL a *relay*
also carries it to the other processes with LISTEN/NOTIFY (see ``delivery/relay.py``). Workers
also poll log heads slowly as a safety net for notices they missed.
"""

from __future__ import annotations

from typing import Protocol

from hookline.domain.events import Published


class Listener(Protocol):
    def on_published(self, notice: Published) -> None: ...

    def on_webhook_changed(self, webhook_id: str) -> None: ...


class Relay(Protocol):
    def send_published(self, notice: Published) -> None: ...

    def send_webhook_changed(self, webhook_id: str) -> None: ...


class Wakeups:
    """Fans notices out to this process's listeners and, if set, to other processes."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.relay: Relay | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def published(self, notice: Published | None, *, local_only: bool = False) -> None:
        """Tell listeners a tenant's log grew (call after the commit). Never blocks."""
        if notice is None:
            return
        for listener in self._listeners:
            listener.on_published(notice)
        if self.relay is not None and not local_only:
            self.relay.send_published(notice)

    def webhook_changed(self, webhook_id: str, *, local_only: bool = False) -> None:
        """Tell listeners a webhook was created, changed or deleted (after the commit)."""
        for listener in self._listeners:
            listener.on_webhook_changed(webhook_id)
        if self.relay is not None and not local_only:
            self.relay.send_webhook_changed(webhook_id)
