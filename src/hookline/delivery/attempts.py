"""After each HTTP try: decide (domain.retry), record it, and apply the verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import orjson
import structlog

from hookline import metrics
from hookline.config import Settings
from hookline.delivery.runtime import Runtime
from hookline.delivery.sender import SendResult
from hookline.delivery.wakeups import Wakeups
from hookline.domain.events import NewEvent, Published, format_ts
from hookline.domain.retry import Decision, Outcome, RetryPolicy, Verdict, decide
from hookline.ids import utcnow
from hookline.store.db import Tx
from hookline.store.deliveries import (
    AttemptRecord,
    Closing,
    Package,
    record_attempt,
    settle_state,
)
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


@dataclass(frozen=True, slots=True)
class Judgement:
    """One attempt, judged: what to store, what happens next, and when it was decided."""

    attempt: AttemptRecord
    decision: Decision
    now: datetime

    @property
    def queue_moves_on(self) -> bool:
        return self.decision.verdict in (Verdict.DELIVERED, Verdict.GIVE_UP)

    def closing(self) -> Closing:
        """The finished package and this attempt, for the worker to record while opening the
        next package (when the queue moves on) instead of with ``store``."""
        assert self.queue_moves_on
        failing = self.decision.verdict is not Verdict.DELIVERED
        return Closing(self.attempt, failing=failing, now=self.now)


class AttemptRecorder:
    """Turns a SendResult into the next state of a webhook's queue, durably.

    ``judge`` is pure; ``store`` writes inside the caller's transaction (so the worker can
    open the next package in the same one); ``settled`` runs after the commit."""

    def __init__(self, settings: Settings, wakeups: Wakeups) -> None:
        self.wakeups = wakeups
        self.policy = policy_of(settings)

    def judge(
        self, runtime: Runtime, package: Package, result: SendResult, *, started: datetime
    ) -> Judgement:
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
        return Judgement(attempt, decision, now)

    async def store(self, tx: Tx, runtime: Runtime, judged: Judgement) -> Published | None:
        """Record the attempt and its verdict in ``tx``; returns the notice of a
        WEBHOOK.DISABLED event.

        When the queue moves on, the worker records ``judged.closing()`` instead, in the
        statement that opens the next package (``store/deliveries.open_package``)."""
        conn, later = tx.conn, tx.later
        attempt, decision, now = judged.attempt, judged.decision, judged.now
        disabling = decision.verdict is Verdict.DISABLE
        # Rows in the lock order of store/webhooks.py: webhooks, webhook_state, packages.
        if disabling:
            await disable_webhook(conn, runtime.webhook_id, reason=decision.reason, now=now)
        await settle_state(
            conn, runtime.webhook_id, attempt.package_id,
            closed=decision.verdict is not Verdict.RETRY,
            failing=decision.verdict is not Verdict.DELIVERED, now=now,
        )  # fmt: skip
        await record_attempt(
            conn, attempt, status=_STATUS[decision.verdict], next_attempt_at=decision.retry_at,
            now=now, later=later,
        )  # fmt: skip
        if not disabling:
            return None
        disabled = _disabled_event(runtime, decision.reason, now)
        tx.log_written = True
        appended = await append_events(conn, runtime.tenant_id, [disabled], now=now)
        return appended.notice

    def settled(
        self,
        runtime: Runtime,
        package: Package,
        result: SendResult,
        judged: Judgement,
        notice: Published | None,
    ) -> float | None:
        """After the commit: count, announce, and update the runtime; returns when to look at
        the webhook next, or None if it was disabled."""
        _count(package, result, judged.decision)
        if judged.decision.verdict is Verdict.DISABLE:
            log.warning(
                "webhook disabled", webhook_id=runtime.webhook_id, reason=judged.decision.reason
            )
            self.wakeups.published(notice)
        return _apply(runtime, package, judged.decision, judged.attempt.number, judged.now)


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
    runtime.failing_since = None if verdict is Verdict.DELIVERED else runtime.failing_since or now
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
    metrics.attempts_counter(result.status).inc()
    metrics.ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
    if decision.verdict is Verdict.DELIVERED:
        metrics.packages_counter("delivered").inc()
        metrics.EVENTS_DELIVERED.inc(len(package.event_seqs))
    elif decision.verdict is not Verdict.RETRY:
        metrics.packages_counter("failed").inc()
