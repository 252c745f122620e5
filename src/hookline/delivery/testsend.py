"""Test packages: a signed ``WEBHOOK.TEST`` event sent now, outside the webhook's queue."""

from __future__ import annotations

import orjson

from hookline.delivery.attempts import attempt_record
from hookline.delivery.payload import package_body
from hookline.delivery.sender import SendResult
from hookline.domain.events import StoredEvent
from hookline.ids import new_id, utcnow
from hookline.services import Services
from hookline.store.deliveries import Package, insert_package, record_attempt
from hookline.store.webhooks import WebhookRecord, active_secrets


def prepare_test(webhook: WebhookRecord) -> tuple[Package, bytes]:
    """The test package and its bytes; it is stored with its attempt once sent."""
    now = utcnow()
    message = {"webhook_id": webhook.id, "message": "This is a test package from Hookline."}
    event = StoredEvent(0, new_id(), "WEBHOOK.TEST", now, orjson.dumps(message).decode())
    body = package_body([event], webhook.id)
    package = Package(
        id=new_id(), tenant_id=webhook.tenant_id, webhook_id=webhook.id, kind="test",
        status="pending", event_seqs=[], event_ids=[event.id], size=len(body), created_at=now,
    )  # fmt: skip
    return package, body


async def deliver_test(
    services: Services, webhook: WebhookRecord, package: Package, body: bytes
) -> SendResult:
    """Send the test package once and record the attempt; it never touches the queue."""
    started = utcnow()
    async with services.db.read() as conn:
        secrets = (await active_secrets(conn, [webhook.id], now=started))[webhook.id]
    headers = services.signer.headers(
        webhook.spec.url, body, msg_id=package.id, timestamp=int(started.timestamp()),
        secrets=secrets,
    )  # fmt: skip
    result = await services.sender.post(webhook.spec.url, body, headers)
    attempt = attempt_record(
        package, result, url=webhook.spec.url, number=1, trigger="test", started=started
    )
    async with services.db.write() as conn:
        # stored with its outcome in one transaction: never left "pending" by a crash mid-send
        await insert_package(conn, package)
        await record_attempt(
            conn,
            attempt,
            status="delivered" if result.ok else "failed",
            next_attempt_at=None,
            now=utcnow(),
        )
    return result
