"""The exact bytes of a package: ``{"payload":[event, ...]}``, each event with ``webhook_id``."""

from __future__ import annotations

from collections.abc import Sequence

from hookline.domain.events import StoredEvent, format_ts


def event_item(event: StoredEvent, webhook_id: str) -> bytes:
    """One event as sent. Ids, types and timestamps are validated text that needs no escaping;
    ``object`` is the stored JSON text, sent byte for byte."""
    return (
        f'{{"id":"{event.id}","created_at":"{format_ts(event.created_at)}",'
        f'"type":"{event.type}","object":{event.object_json},"webhook_id":"{webhook_id}"}}'
    ).encode()


def package_body(events: Sequence[StoredEvent], webhook_id: str) -> bytes:
    return b'{"payload":[' + b",".join(event_item(e, webhook_id) for e in events) + b"]}"
