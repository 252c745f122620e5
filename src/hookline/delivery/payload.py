"""The exact bytes of a package: ``{"payload":[event, ...]}``, each event with ``webhook_id``."""

from __future__ import annotations

from collections.abc import Sequence

from hookline.domain.events import StoredEvent, format_ts


def event_head(event: StoredEvent) -> bytes:
    """One event as sent, up to its ``webhook_id`` value: the same for every webhook, so the
    worker renders it once per read and shares it. Ids, types and timestamps are validated
    text that needs no escaping; ``object`` is the stored JSON text, sent byte for byte."""
    return (
        f'{{"id":"{event.id}","created_at":"{format_ts(event.created_at)}",'
        f'"type":"{event.type}","object":{event.object_json},"webhook_id":"'
    ).encode()


def event_item(event: StoredEvent, webhook_id: str) -> bytes:
    """One event as sent."""
    return event_head(event) + f'{webhook_id}"}}'.encode()


def package_body(events: Sequence[StoredEvent], webhook_id: str) -> bytes:
    return join_heads([event_head(e) for e in events], webhook_id)


def join_heads(heads: Sequence[bytes], webhook_id: str) -> bytes:
    """The body of a package of events rendered with ``event_head``."""
    tail = f'{webhook_id}"}}'.encode()
    return b'{"payload":[' + b",".join([head + tail for head in heads]) + b"]}"
