"""The delivery worker: holds webhook leases and drives each webhook's ordered queue.

Per webhook, one package at a time: plan the next package from the events after the cursor,
record it (moving the cursor), send it, record the attempt, and either move on or wait for the
retry. Webhooks are independent: a slow or failing one holds only its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from hookline import metrics
from hookline.config import Settings
from hookline.delivery.attempts import AttemptRecorder
from hookline.delivery.batching import WriteBatcher
from hookline.delivery.eventcache import EventCache, Window
from hookline.delivery.payload import event_head, join_heads, package_body
from hookline.delivery.quiet import QuietStretches
from hookline.delivery.runtime import Opening, Runtime
from hookline.delivery.sender import Sender
from hookline.delivery.signing import Presigned, Signer
from hookline.delivery.wakeups import Wakeups
from hookline.domain.events import MIN_WIRE_SIZE, Published
from hookline.domain.packing import plan_package, planning_window
from hookline.ids import new_id, utcnow
from hookline.store.db import Database, Tx
from hookline.store.deliveries import (
    Closing,
    claim_webhooks,
    close_package,
    load_states,
    open_package_in,
    release_leases,
    renew_lease,
    renew_leases,
)
from hookline.store.events import events_by_seq, log_heads, waiting_events
from hookline.store.retention import prune
from hookline.store.webhooks import active_secrets, webhooks_by_id
from hookline.store.workers import deliverable_webhooks, forget, heartbeat, live_workers

log = structlog.get_logger("hookline.worker")

BURST = 16  # packages one webhook may send back to back before others get a turn
LOOKAHEAD_PACKAGES = 2  # while draining, one read of the log serves up to this many packages
# A read that goes into the EventCache (bounded in bytes, shared) may take up to this many
# packages' worth, as far as SHARED_READ_BYTES of events like the ones it holds allow.
SHARED_LOOKAHEAD_PACKAGES = 8
SHARED_READ_BYTES = 2**20
POLL_SECONDS = 1.0  # safety net for publishes whose wake-up this process did not see
CLAIM_BATCH = 1000
SHARE_SLACK = 1  # hold up to one webhook over the fair share before handing any back
ERROR_PAUSE = 5.0
STOP_WRITES_WAIT = 10.0  # seconds ``stop`` waits for writes in flight before giving leases back


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Drives every webhook it holds; ``run`` until ``stop``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        wakeups: Wakeups,
        sender: Sender,
        signer: Signer,
        owner: str | None = None,
        peers: int = 1,
    ) -> None:
        self.db, self.settings, self.wakeups = db, settings, wakeups
        self.sender, self.signer = sender, signer
        self.owner = owner or worker_name()
        # Workers started together (``hookline worker --processes N``): count at least that
        # many when taking a share, or the first to start claims everything before the
        # others have registered, and gives busy webhooks back only a renewal period later.
        self.peers = peers
        self.recorder = AttemptRecorder(settings, wakeups)
        self._batcher = WriteBatcher(db)
        self._events = EventCache()
        self._quiet = QuietStretches()
        self._runtimes: dict[str, Runtime] = {}
        self._by_tenant: dict[str, set[str]] = defaultdict(set)
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._heads: dict[str, int] = {}
        self._stopping = False
        self._ready = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._renewed_at = time.monotonic()  # when our leases were last renewed
        self._renew_every = min(
            settings.lease_duration.total_seconds() / 3, settings.resync_interval.total_seconds()
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        self.wakeups.subscribe(self)
        background: list[asyncio.Task[None]] = []
        try:
            async with self.db.read() as conn:
                self._heads = await log_heads(conn)
            await self._sync()
            self._ready.set()
            background = [
                asyncio.create_task(self._maintain()),
                asyncio.create_task(self._retention()),
            ]
            await self._loop()
        finally:
            self.wakeups.unsubscribe(self)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def stop(self, grace: float | None = None) -> None:
        """Finish in-flight attempts (by default as long as one attempt may take), then give
        the leases back."""
        if grace is None:
            grace = self.settings.request_timeout.total_seconds() + 5
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
        # A cancelled step's write may still be running in a shared transaction, locking rows
        # that giving the leases back updates too: let it finish first, or the two can
        # deadlock, and a failed release leaves the webhooks to wait for the leases to expire.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._batcher.settled(), STOP_WRITES_WAIT)
        async with self.db.write() as conn:
            await release_leases(conn, self.owner)
            await forget(conn, self.owner, before=utcnow() - 10 * self.settings.lease_duration)

    # --- scheduling ------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, webhook_id = heapq.heappop(self._heap)
                runtime = self._runtimes.get(webhook_id)
                if runtime is not None and runtime.due == due and not runtime.busy:
                    runtime.due = None
                    self._spawn(runtime)
            timeout = self._heap[0][0] - now if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _schedule(self, runtime: Runtime, when: float | None) -> None:
        if when is None or (runtime.due is not None and runtime.due <= when):
            return
        runtime.due = when
        heapq.heappush(self._heap, (when, next(self._order), runtime.webhook_id))
        if self._heap[0][2] == runtime.webhook_id:
            self._wake.set()

    def _spawn(self, runtime: Runtime) -> None:
        runtime.busy = True
        task = asyncio.create_task(self._drive(runtime))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(self, runtime: Runtime) -> None:
        next_due: float | None = None
        try:
            async with self._sem:
                for turn in range(BURST):
                    if self._stopping:
                        return
                    if runtime.stale or runtime.handing_over:
                        break  # the webhook changed (reload first), or goes to another worker
                    next_due = await self._step(runtime, last=turn == BURST - 1)
                    if next_due is None or next_due > time.time():
                        break
        except Exception:
            log.exception("webhook step failed", webhook_id=runtime.webhook_id)
            next_due = time.time() + ERROR_PAUSE
        finally:
            runtime.busy = False
            runtime.lookahead = []
        await self._after_drive(runtime, next_due)

    async def _after_drive(self, runtime: Runtime, next_due: float | None) -> None:
        if self._runtimes.get(runtime.webhook_id) is not runtime:
            return  # dropped or replaced meanwhile
        if runtime.handing_over:
            await self._hand_over(runtime)
            return
        if runtime.stale:
            await self._reload([runtime.webhook_id])
            return
        if runtime.poked and runtime.package is None:
            next_due = time.time() if next_due is None else min(next_due, time.time())
        runtime.poked = False
        self._schedule(runtime, next_due)

    # --- one step of one webhook -----------------------------------------------------------

    async def _step(self, runtime: Runtime, *, last: bool = False) -> float | None:
        """Advance one webhook by one package; returns when to look at it next (or None).
        ``last``: the last step of the webhook's turn (see ``_attempt``)."""
        if runtime.package is None:
            due = await self._open_next(runtime)
            if runtime.package is None:
                return due
        package = runtime.package
        if package.next_attempt_at is not None and package.next_attempt_at > utcnow():
            return package.next_attempt_at.timestamp()
        return await self._attempt(runtime, last=last)

    async def _open_next(self, runtime: Runtime) -> float | None:
        opening = await self._batcher.run(
            lambda tx: self._plan_and_open(tx, runtime), one_write=True
        )
        return self._take(runtime, opening)

    async def _plan_and_open(
        self, tx: Tx, runtime: Runtime, closing: Closing | None = None, *, defer: bool = False
    ) -> Opening:
        """Plan the webhook's next package and, if it is due, record it (moving the cursor)
        in the caller's write transaction, closing ``closing`` (the package just finished) on
        the way; with ``defer``, only close it, and look again at once. Touches no runtime
        state: see ``_take``."""
        if defer:
            opening = Opening(due=time.time())
        else:
            opening = await self._plan_and_open_after(tx, runtime, closing)
        if closing is not None and opening.package is None and not opening.stale:
            # nothing opened with it
            await close_package(tx.conn, runtime.webhook_id, closing, later=tx.later)
        return opening

    async def _plan_and_open_after(
        self, tx: Tx, runtime: Runtime, closing: Closing | None
    ) -> Opening:
        now = utcnow()
        # Captured before the read: every event up to it is visible to the read (the head only
        # moves after commits), so "nothing waiting" means nothing up to it ever will be.
        head = self._heads.get(runtime.tenant_id, 0)
        window, ahead, read = await self._window(tx, runtime, head)
        plan = plan_package(
            [item[0] for item in window], max_size=runtime.spec.max_package_size,
            max_events=self.settings.max_package_events, delay=runtime.spec.delay_timedelta,
            now=now,
        )  # fmt: skip
        if plan is None:
            # True for good, and for the tenant's other webhooks with this filter: shared at
            # once, even with the units after this one in a shared transaction (see quiet.py).
            self._quiet.add(runtime.tenant_id, runtime.filter, after=runtime.after, upto=head)
            return Opening(floor=head, read=read)
        pending = sum(item[0].size for item in window)
        if plan.due_at > now:
            return Opening(
                due=plan.due_at.timestamp(), pending_bytes=pending, lookahead=ahead, read=read
            )
        taken = window[: plan.take]
        events = [event for _, event, _ in taken]
        body = join_heads([head for _, _, head in taken], runtime.webhook_id)
        package_id = new_id()
        # Alone, without a transaction (PostgreSQL), the statement is the chain's one wait for
        # the database: sign the package meanwhile. In a shared transaction other units' work
        # fills the waits, and signing ahead only added objects to keep (7% fewer packages/s
        # with 1000 webhooks).
        presigned = None
        if tx.autocommit:
            presigned = Presigned(
                self.signer, runtime.spec.url, body, msg_id=package_id, secrets=runtime.secrets
            )
        # If the statement fails, the signing still runs once and is dropped with the rest.
        package, confirmation = await open_package_in(
            tx, tenant_id=runtime.tenant_id, webhook_id=runtime.webhook_id, owner=self.owner,
            expected_cursor=runtime.cursor, settings_at=runtime.settings_at, events=events,
            size=len(body), now=now, closing=closing, package_id=package_id,
        )  # fmt: skip
        if package is None:
            if presigned is not None:
                presigned.cancel()
            return Opening(stale=True, read=read)
        return Opening(
            package=package, body=body, pending_bytes=pending - plan.size, lookahead=ahead,
            read=read, confirmation=confirmation, presigned=presigned,
        )  # fmt: skip

    async def _window(
        self, tx: Tx, runtime: Runtime, head: int
    ) -> tuple[list[Window], list[Window], tuple[int, list[Window]] | None]:
        """The events to plan the next package from (one more than a package can hold), the
        lookahead to keep, and the read to share with the tenant's other webhooks, both to
        apply once the transaction has committed (see ``_take``). Where the tenant's other
        webhooks have already shown that nothing this one takes waits up to ``head``, the log
        is not read at all (see ``_read_from``).

        A webhook that takes every event reads through the worker's ``EventCache``: its read
        serves the tenant's other such webhooks too. A read is shared at once if it can only
        have seen committed events: nothing in its transaction had written to the log (see
        ``Tx.log_written``), so the units after it in the same transaction (a thousand
        webhooks starting together) read from the cache too. Otherwise only once committed:
        a shared transaction that rolls back may have let the read see another unit's event
        (a ``WEBHOOK.DISABLED``) that then never existed."""
        size = planning_window(
            max_size=runtime.spec.max_package_size,
            max_events=self.settings.max_package_events,
            min_event_size=MIN_WIRE_SIZE,
        )
        if runtime.filter.everything:
            cached, start = self._events.window(runtime.tenant_id, after=runtime.after, limit=size)
            if len(cached) >= size:
                return cached, [], None
            start_at = self._read_from(runtime, start, head)
            if start_at is None:
                return cached, [], None
            clean = not tx.log_written
            limit = self._shared_read_limit(runtime.tenant_id, size)
            read = await self._read(tx.conn, runtime, after=start_at, limit=limit)
            if clean:
                self._events.add(runtime.tenant_id, after=start_at, read=read)
                return (cached + read)[:size], [], None
            return (cached + read)[:size], [], (start_at, read)
        return await self._filtered_window(tx.conn, runtime, size, head)

    async def _filtered_window(
        self, conn: AsyncConnection, runtime: Runtime, size: int, head: int
    ) -> tuple[list[Window], list[Window], None]:
        """``_window`` for a webhook with a filter. While it drains a backlog, one read serves
        several packages: what is left of it after the cursor is still exactly what waits
        there. The surplus is kept only for the current burst (see ``_drive``), so memory
        follows concurrency, not webhooks."""
        ahead = [item for item in runtime.lookahead if item[0].seq > runtime.after]
        if len(ahead) >= size:
            return ahead[:size], ahead, None
        # What is left ahead is the start of what waits: read only what follows it.
        start = self._read_from(runtime, ahead[-1][0].seq if ahead else runtime.after, head)
        read = ahead
        if start is not None:
            limit = size * LOOKAHEAD_PACKAGES - len(ahead)
            read = ahead + await self._read(conn, runtime, after=start, limit=limit)
        return read[:size], (read if len(read) > size else []), None

    def _shared_read_limit(self, tenant_id: str, size: int) -> int:
        """How many events a read for the ``EventCache`` asks for: ``LOOKAHEAD_PACKAGES``'
        worth, or more while the tenant's events (those the cache holds) are small enough for
        ``SHARED_LOOKAHEAD_PACKAGES``' worth to weigh at most ``SHARED_READ_BYTES``. A read
        costs a round trip and a statement whatever its size: one webhook draining went
        3-8% faster. With large events it stays as it was, so one read weighs no more."""
        limit = size * LOOKAHEAD_PACKAGES
        mean = self._events.mean_weight(tenant_id)
        if mean:
            limit = max(limit, min(size * SHARED_LOOKAHEAD_PACKAGES, SHARED_READ_BYTES // mean))
        return limit

    def _read_from(self, runtime: Runtime, after: int, head: int) -> int | None:
        """Where to read the log for ``runtime``, given that every event it takes up to
        ``after`` is at hand (read completely: the worker's cache, the lookahead; or
        ``after`` is its cursor): past that, and past what the tenant's webhooks with the same
        filter have shown holds nothing it takes. None if what is known beyond the cursor
        reaches ``head``: nothing more waits that the worker knows of (later events wake it,
        see ``on_published``). Near the head of a backlog the cache holds fewer events than
        a planning window, but every one up to the head: those reads found nothing (3,002
        reads of the log for 4,000 packages, 1000 webhooks of 100 events each; 1,002 after).

        With nothing known beyond the cursor, the log is read even at the head: a worker
        that learns of publishes only by polling the heads (SQLite, the API in another
        process) finds what was committed since, instead of idling until the next poll."""
        start = self._quiet.upto(runtime.tenant_id, runtime.filter, after=after)
        return None if start > runtime.after and start >= head else start

    @staticmethod
    async def _read(
        conn: AsyncConnection, runtime: Runtime, *, after: int, limit: int
    ) -> list[Window]:
        """The webhook's waiting events after ``after``, rendered for sending."""
        rows = await waiting_events(
            conn, runtime.tenant_id, after=after, category_filter=runtime.filter, limit=limit
        )
        return [(waiting, event, event_head(event)) for waiting, event in rows]

    def _take(self, runtime: Runtime, opening: Opening) -> float | None:
        """Apply a committed ``Opening`` to the runtime; returns when to look next."""
        runtime.pending_bytes = max(opening.pending_bytes, 0)
        runtime.lookahead = opening.lookahead
        if opening.read is not None:
            after, read = opening.read
            self._events.add(runtime.tenant_id, after=after, read=read)
        if opening.floor is not None:
            runtime.floor = max(runtime.floor, opening.floor)
        if opening.moved_underneath:
            runtime.stale = True  # reload before going on
            return None
        if opening.package is None:
            return opening.due
        runtime.package, runtime.body = opening.package, opening.body
        runtime.presigned = opening.presigned
        runtime.cursor = opening.package.event_seqs[-1]
        return time.time()

    async def _attempt(self, runtime: Runtime, *, last: bool = False) -> float | None:
        """Send the open package once and settle it. When the queue moves on, the next
        package is opened in the same write, with its bytes and signature ready for the next
        step; but not at the ``last`` step of a turn while other webhooks wait for theirs: its
        bytes would wait in memory with it, and with ten thousand webhooks taking turns that
        was 120 MB. It is opened at the start of the webhook's next turn instead."""
        package = runtime.package
        assert package is not None
        if not self._lease_outlives_attempt():
            # Renewals have been failing: the lease may lapse mid-attempt and another worker
            # take the webhook over, so send nothing until a renewal succeeds.
            return time.time() + ERROR_PAUSE
        body, runtime.body = runtime.body, None
        presigned, runtime.presigned = runtime.presigned, None
        if body is None:
            async with self.db.read() as conn:
                events = await events_by_seq(conn, runtime.tenant_id, package.event_seqs)
            body = package_body(events, runtime.webhook_id)
        started = utcnow()
        timestamp = int(started.timestamp())
        headers = presigned.take(timestamp) if presigned is not None else None
        if headers is None:
            headers = self.signer.headers(
                runtime.spec.url, body, msg_id=package.id, timestamp=timestamp,
                secrets=runtime.secrets,
            )  # fmt: skip
        result = await self.sender.post(runtime.spec.url, body, headers)
        judged = self.recorder.judge(runtime, package, result, started=started)
        # Close without opening the next package when others wait for their turn, or when the
        # webhook goes to another worker at the end of this step (it opens the next itself).
        others_wait = last and len(self._tasks) > self.settings.max_concurrency
        defer = others_wait or runtime.handing_over

        async def settle(tx: Tx) -> tuple[Published | None, Opening | None]:
            # When the queue moves on, the attempt is recorded, its package closed and the next
            # one opened in one write (one statement on PostgreSQL): one commit per package,
            # which the batcher shares between the webhooks finishing at the same time.
            if judged.queue_moves_on:
                closing = judged.closing()
                return None, await self._plan_and_open(tx, runtime, closing, defer=defer)
            return await self.recorder.store(tx, runtime, judged), None

        notice, opening = await self._batcher.run(settle, one_write=judged.queue_moves_on)
        next_due = self.recorder.settled(runtime, package, result, judged, notice)
        if next_due is None:
            await self._let_go([runtime.webhook_id])
            return None
        return self._take(runtime, opening) if opening is not None else next_due

    # --- wake-ups ---------------------------------------------------------------------------

    def on_published(self, notice: Published) -> None:
        """New events in a tenant's log: wake the webhooks they concern, without a query."""
        self._heads[notice.tenant_id] = max(self._heads.get(notice.tenant_id, 0), notice.last_seq)
        for webhook_id in self._by_tenant.get(notice.tenant_id, ()):
            runtime = self._runtimes[webhook_id]
            batches = [b for c, b in notice.categories.items() if runtime.filter.matches(c)]
            if batches:
                oldest = min(b.first_created_at for b in batches)
                self._notice(runtime, sum(b.size for b in batches), oldest)

    def _notice(self, runtime: Runtime, size: int, first_created_at: object) -> None:
        if runtime.busy:
            runtime.poked = True
            return
        if runtime.package is not None:
            return  # it is waiting for a retry; new events queue behind it
        runtime.pending_bytes += size
        now = time.time()
        if runtime.pending_bytes >= runtime.spec.max_package_size:
            self._schedule(runtime, now)
        else:
            oldest = min(first_created_at.timestamp(), now)  # type: ignore[attr-defined]
            self._schedule(runtime, oldest + runtime.delay)

    def _poke_tenant(self, tenant_id: str) -> None:
        for webhook_id in self._by_tenant.get(tenant_id, ()):
            runtime = self._runtimes[webhook_id]
            if runtime.busy:
                runtime.poked = True
            elif runtime.package is None:
                self._schedule(runtime, time.time())

    def on_webhook_changed(self, webhook_id: str) -> None:
        runtime = self._runtimes.get(webhook_id)
        if runtime is not None and runtime.busy:
            runtime.stale = True
            return
        if runtime is not None:
            # Busy from now, not from when the reload task first runs: otherwise the loop could
            # start a send in between, and the reload would install a second runtime beside it.
            runtime.busy = True
        coroutine = self._reload([webhook_id]) if runtime else self._sync()
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- leases and loading -----------------------------------------------------------------

    async def _maintain(self) -> None:
        """Poll log heads (safety net) every second; renew and claim leases every lease/3;
        reload the settings of held webhooks every resync interval."""
        last_renewal = last_reload = time.monotonic()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                async with self.db.read() as conn:
                    heads = await log_heads(conn)
                for tenant_id, head in heads.items():
                    if head > self._heads.get(tenant_id, 0):
                        self._heads[tenant_id] = head
                        self._poke_tenant(tenant_id)
                if time.monotonic() - last_renewal >= self._renew_every:
                    last_renewal = time.monotonic()
                    await self._sync()
                if time.monotonic() - last_reload >= self.settings.resync_interval.total_seconds():
                    last_reload = time.monotonic()
                    await self._reload([i for i, r in self._runtimes.items() if not r.busy])
            except Exception:
                log.exception("worker maintenance failed")

    async def _retention(self) -> None:
        """Prune what is past retention, in its own task so lease renewal never waits on it."""
        settings = self.settings
        while settings.retention_interval:
            await asyncio.sleep(settings.retention_interval.total_seconds())
            try:
                pruned = await prune(
                    self.db, events_age=settings.retention_events,
                    history_age=settings.retention_history, now=utcnow(),
                    batch=settings.retention_batch,
                )  # fmt: skip
                if pruned.events or pruned.packages or pruned.attempts:
                    log.info("pruned", events=pruned.events, packages=pruned.packages,
                             attempts=pruned.attempts)  # fmt: skip
            except Exception:
                log.exception("retention failed")

    async def _sync(self) -> None:
        """Heartbeat, renew our leases, claim up to our fair share, hand back any excess.

        The share is the deliverable webhooks divided by the live workers, so workers that
        start or die rebalance within a renewal period, without a coordinator. One sync at a
        time: each makes the runtimes match the leases it saw, so two interleaved would drop
        each other's freshly claimed webhooks (leased, but driven by nobody)."""
        async with self._sync_lock:
            await self._sync_once()

    def _lease_outlives_attempt(self) -> bool:
        """Whether the leases, as last renewed, last beyond an attempt started now."""
        left = self.settings.lease_duration.total_seconds() - (time.monotonic() - self._renewed_at)
        return left > self.settings.request_timeout.total_seconds()

    async def _sync_once(self) -> None:
        renewing_at = time.monotonic()
        now = utcnow()
        until = now + self.settings.lease_duration
        async with self.db.write() as conn:
            await heartbeat(conn, self.owner, now=now)
            live = await live_workers(conn, since=now - self.settings.lease_duration)
            live = max(live, self.peers)
            share = math.ceil(await deliverable_webhooks(conn) / live)
            held, locked = await renew_leases(conn, self.owner, until=until)
            claimed = await self._claim(conn, held, share, now=now, until=until)
            excess = self._excess(held, share)
            if excess:
                await release_leases(conn, self.owner, excess)
                held -= set(excess)
        # The rows a delivery write had locked: one at a time, each in a transaction of its
        # own, once that write has committed (see renew_leases).
        for webhook_id in locked - set(excess):
            async with self.db.write() as conn:
                if not await renew_lease(conn, self.owner, webhook_id, until=until):
                    held.discard(webhook_id)
        self._renewed_at = renewing_at
        self._drop([i for i in self._runtimes if i not in held])
        await self._reload([i for i in held if i not in self._runtimes])
        # A full batch claimed: more may be free. Claim on now, a batch at a time (each one
        # loaded before the next), not one batch per renewal period: ten thousand free
        # webhooks took a new worker over three minutes to start driving.
        while len(claimed) == CLAIM_BATCH:
            async with self.db.write() as conn:
                claimed = await self._claim(conn, held, share, now=utcnow(), until=until)
            await self._reload(claimed)
        metrics.WEBHOOKS_HELD.set(len(self._runtimes))

    async def _claim(
        self, conn: AsyncConnection, held: set[str], share: int, *, now: datetime, until: datetime
    ) -> list[str]:
        """Claim up to one batch of free webhooks towards our share; adds them to ``held``."""
        if len(held) >= share:
            return []
        claimed = await claim_webhooks(
            conn, self.owner, now=now, until=until, limit=min(share - len(held), CLAIM_BATCH)
        )
        held.update(claimed)
        return claimed

    def _excess(self, held: set[str], share: int) -> list[str]:
        """Idle webhooks to hand back when we hold more than our share (dropped at once, so
        no step starts on them while the release commits). If too few are idle, busy ones
        are marked to be handed over when their current step ends (``_hand_over``): a worker
        that joins while the others drain a backlog gets its share of the backlog, not only
        of what is quiet."""
        leaving = sum(1 for runtime in self._runtimes.values() if runtime.handing_over)
        surplus = len(held) - share - SHARE_SLACK - leaving
        if surplus <= 0:
            return []
        idle = [
            webhook_id
            for webhook_id in held
            if (runtime := self._runtimes.get(webhook_id)) is None
            or (not runtime.busy and runtime.package is None)
        ][:surplus]
        self._drop(idle)
        busy = [
            runtime
            for webhook_id in held
            if (runtime := self._runtimes.get(webhook_id)) is not None
            and runtime.busy
            and not runtime.handing_over
        ]
        for runtime in busy[: surplus - len(idle)]:
            runtime.handing_over = True
        return idle

    async def _hand_over(self, runtime: Runtime) -> None:
        """Release a webhook marked by ``_excess`` once its step has ended. Every write of the
        step has committed, and the last one closed its package without opening the next
        (or left a package waiting for its retry, which the next holder loads as it is), so
        another worker takes it over from exactly where it stands, nothing sent twice. Under
        the sync lock: a sync running meanwhile, having renewed this lease, would load the
        webhook again."""
        runtime.busy = True  # nothing starts on it meanwhile
        try:
            async with self._sync_lock:
                if self._runtimes.get(runtime.webhook_id) is not runtime:
                    return
                await self._let_go([runtime.webhook_id])
        except Exception:
            # Still leased to us: the next sync finds it held and loads it again.
            log.exception("handing a webhook over failed", webhook_id=runtime.webhook_id)

    async def _reload(self, webhook_ids: list[str]) -> None:
        """(Re)build the runtimes of these webhooks from the database and look at them now."""
        if not webhook_ids:
            return
        previous = [self._runtimes[i] for i in webhook_ids if i in self._runtimes]
        for runtime in previous:
            runtime.busy = True  # keep the loop off it while loading
            runtime.stale = False  # what changed until now, this load reads
        try:
            now = utcnow()
            async with self.db.read() as conn:
                records = {r.id: r for r in await webhooks_by_id(conn, webhook_ids)}
                states = {s.webhook_id: s for s in await load_states(conn, list(records))}
                keys = await active_secrets(conn, list(records), now=now)
        except BaseException:
            for runtime in previous:
                runtime.busy = False
                self._schedule(runtime, time.time() + ERROR_PAUSE)
            raise
        gone = [
            i
            for i in webhook_ids
            if i not in records or not records[i].spec.enabled or i not in states
        ]
        for webhook_id in webhook_ids:
            if webhook_id not in gone:
                record, state = records[webhook_id], states[webhook_id]
                fresh = Runtime(
                    webhook_id, record.tenant_id, record.spec, record.updated_at,
                    list(keys[webhook_id]), state.cursor_seq, state.failing_since,
                    state.open_package,
                )  # fmt: skip
                self._install(fresh, self._runtimes.get(webhook_id))
        if gone:
            await self._let_go(gone)

    def _install(self, runtime: Runtime, previous: Runtime | None) -> None:
        """Put a freshly loaded runtime in place. If nothing that matters changed, keep what
        the previous one knew; otherwise look at the webhook now."""
        self._runtimes[runtime.webhook_id] = runtime
        self._by_tenant[runtime.tenant_id].add(runtime.webhook_id)
        if previous is not None and runtime.same_queue_as(previous):
            runtime.floor, runtime.pending_bytes = previous.floor, previous.pending_bytes
            # a wake-up that reached the previous runtime while it was reloading is not lost
            self._schedule(runtime, time.time() if previous.poked else previous.due)
        else:
            self._schedule(runtime, time.time())
        if previous is not None and previous.stale:
            # A change notice arrived while we were loading, maybe after our read: load again.
            self.on_webhook_changed(runtime.webhook_id)

    async def _let_go(self, webhook_ids: list[str]) -> None:
        """Stop driving these webhooks at once, then give their leases back."""
        self._drop(webhook_ids)
        async with self.db.write() as conn:
            await release_leases(conn, self.owner, webhook_ids)

    def _drop(self, webhook_ids: Iterable[str]) -> None:
        for webhook_id in list(webhook_ids):
            runtime = self._runtimes.pop(webhook_id, None)
            if runtime is not None:
                self._by_tenant[runtime.tenant_id].discard(webhook_id)
