"""After each HTTP try: decide (domain.retry), record it, and apply the verdict."""

from __future__ import annotations

import time
from datetime import datetime

import orjson
import structlog

from hookline import metrics
from hookline.config import Settings
from hookline.delivery.runtime import Runtime
from hookline.delivery.sender import SendResult
from hookline.delivery.wakeups import Wakeups
from hookline.domain.events import NewEvent, format_ts, summarize
from hookline.domain.retry import Decision, Outcome, RetryPolicy, Verdict, decide
from hookline.ids import utcnow
from hookline.store.db import Database
from hookline.store.deliveries import AttemptRecord, Package, record_attempt, settle_state
from hookline.store.events import append_events
from hookline.store.webhooks import disable_webhook

log = structlog.get_logger("hookline.delivery")

_STATUS = {
    Verdict.DELIVERED: "delivered",
    Verdict.RETRY: "pending",
    Verdict.GIVE_UP: "failed",
    Verdict.DISABLE: "failed",
}


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        max_age=settings.retry_max_age,
        retry_after_max=settings.retry_after_max.total_seconds(),
        disable_after=settings.disable_after,
    )


def attempt_record(
    package: Package, result: SendResult, *, url: str, number: int, trigger: str, started: datetime
) -> AttemptRecord:
    return AttemptRecord(
        package_id=package.id,
        tenant_id=package.tenant_id,
        webhook_id=package.webhook_id,
        number=number,
        trigger=trigger,
        url=url,
        started_at=started,
        duration_ms=round(result.duration_ms, 3),
        status_code=result.status,
        error=result.error,
        response_headers=result.headers or None,
        response_excerpt=result.excerpt or None,
    )


class AttemptRecorder:
    """Turns a SendResult into the next state of a webhook's queue, durably."""

    def __init__(self, db: Database, settings: Settings, wakeups: Wakeups) -> None:
        self.db, self.wakeups = db, wakeups
        self.policy = policy_of(settings)

    async def record(
        self, runtime: Runtime, package: Package, result: SendResult, *, started: datetime
    ) -> float | None:
        """Record the attempt; returns when to look at the webhook next, None if disabled."""
        now = utcnow()
        number = package.attempts + 1
        decision = decide(
            Outcome(result.status, result.headers.get("retry-after")),
            attempts=number,
            package_created_at=package.created_at,
            failing_since=runtime.failing_since,
            now=now,
            policy=self.policy,
        )
        attempt = attempt_record(
            package, result, url=runtime.spec.url, number=number, trigger="scheduled",
            started=started,
        )  # fmt: skip
        await self._store(runtime, attempt, decision, now)
        _count(package, result, decision)
        return self._apply(runtime, package, decision, number, now)

    async def _store(
        self, runtime: Runtime, attempt: AttemptRecord, decision: Decision, now: datetime
    ) -> None:
        notice = None
        async with self.db.write() as conn:
            await record_attempt(
                conn,
                attempt,
                status=_STATUS[decision.verdict],
                next_attempt_at=decision.retry_at,
                now=now,
            )
            await settle_state(
                conn,
                runtime.webhook_id,
                attempt.package_id,
                closed=decision.verdict is not Verdict.RETRY,
                failing=decision.verdict is not Verdict.DELIVERED,
                now=now,
            )
            if decision.verdict is Verdict.DISABLE:
                await disable_webhook(conn, runtime.webhook_id, reason=decision.reason, now=now)
                disabled = _disabled_event(runtime, decision.reason, now)
                appended = await append_events(conn, runtime.tenant_id, [disabled], now=now)
                notice = summarize(runtime.tenant_id, appended.appended)
        if decision.verdict is Verdict.DISABLE:
            log.warning("webhook disabled", webhook_id=runtime.webhook_id, reason=decision.reason)
            self.wakeups.published(notice)

    @staticmethod
    def _apply(
        runtime: Runtime, package: Package, decision: Decision, number: int, now: datetime
    ) -> float | None:
        verdict = decision.verdict
        if verdict is Verdict.DISABLE:
            return None
        if verdict is Verdict.RETRY:
            package.attempts, package.next_attempt_at = number, decision.retry_at
            runtime.failing_since = runtime.failing_since or now
            assert decision.retry_at is not None
            return decision.retry_at.timestamp()
        runtime.package = None
        runtime.failing_since = (
            None if verdict is Verdict.DELIVERED else runtime.failing_since or now
        )
        return time.time()


def _disabled_event(runtime: Runtime, reason: str, now: datetime) -> NewEvent:
    body = {
        "webhook_id": runtime.webhook_id,
        "url": runtime.spec.url,
        "reason": reason,
        "disabled_at": format_ts(now),
    }
    return NewEvent(type="WEBHOOK.DISABLED", object_json=orjson.dumps(body).decode())


def _count(package: Package, result: SendResult, decision: Decision) -> None:
    metrics.ATTEMPTS.labels(metrics.outcome_class(result.status)).inc()
    metrics.ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
    if decision.verdict is Verdict.DELIVERED:
        metrics.PACKAGES.labels("delivered").inc()
        metrics.EVENTS_DELIVERED.inc(len(package.event_seqs))
    elif decision.verdict is not Verdict.RETRY:
        metrics.PACKAGES.labels("failed").inc()
