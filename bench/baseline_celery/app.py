"""A Celery app (Redis broker, db 15 on 127.0.0.1) with one task: POST one event to one
webhook with ``requests``, retrying with back-off on any error (the simple version of what
Hookline does).

    celery -A bench.baseline_celery.app worker --concurrency=8 -P prefork -l warning
"""

from __future__ import annotations

import os

import requests
from celery import Celery

BROKER = os.environ.get("HOOKLINE_BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/15")

app = Celery("hookline_baseline", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True,
)

_session = requests.Session()  # one per worker process: keep-alive, as a careful team would


@app.task(
    bind=True,
    autoretry_for=(requests.RequestException,),
    retry_backoff=1,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def deliver(self, url: str, event_id: str, body: str) -> None:  # type: ignore[no-untyped-def]
    """POST ``{"payload": [event]}`` to ``url``; a non-2xx answer raises and is retried."""
    response = _session.post(
        url,
        data=body,
        headers={"content-type": "application/json", "webhook-id": event_id},
        timeout=(5, 15),
    )
    response.raise_for_status()
