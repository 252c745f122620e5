"""The stretch of each tenant's log a worker read last, shared by the webhooks it drives.

Webhooks of one tenant that subscribe to everything read the same events: with a thousand of
them draining side by side, each would read (and decode) every event from the database
again. The log is append-only and a read ``seq > after ORDER BY seq LIMIT n`` returns every
event in ``(after, last returned]`` (sequence numbers commit in order, see
``store.events.append_events``), so a read tells exactly which stretch of the log it holds
completely. The cache keeps one such stretch per tenant and serves windows from it.

Only reads of committed events go in: a read made in a transaction that had written to the
log itself (a ``WEBHOOK.DISABLED``) is added once that commits, since a shared transaction
that rolls back may have let it see another unit's event that then never existed. Memory is
bounded in bytes, per tenant and in all, least recently used tenant first: an event may be up
to 256 KiB, so a count of events would bound nothing.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

from hookline.domain.events import StoredEvent
from hookline.domain.packing import Waiting

# A waiting event, with its bytes as sent up to the webhook id (see delivery.payload).
Window = tuple[Waiting, StoredEvent, bytes]
PER_TENANT = 4 * 2**20  # bytes kept of one tenant's log (see _weight)
TOTAL = 16 * 2**20  # bytes kept in all
OVERHEAD = 512  # what an event costs in memory besides its text, roughly


def _weight(item: Window) -> int:
    """What an event weighs in the cache: its wire size (held twice: the stored text and the
    rendered head) and the objects around it."""
    return 2 * item[0].size + OVERHEAD


@dataclass(slots=True)
class _Stretch:
    """Every event with ``after < seq <= upto``, in log order."""

    after: int
    upto: int
    items: list[Window] = field(default_factory=list)
    weight: int = 0


class EventCache:
    """Complete stretches of tenants' logs; ``window`` reads, ``add`` stores a committed read.
    ``per_tenant`` and ``total`` bound the weight kept (see ``_weight``)."""

    def __init__(self, *, per_tenant: int = PER_TENANT, total: int = TOTAL) -> None:
        self.per_tenant, self.total = per_tenant, total
        self._stretches: OrderedDict[str, _Stretch] = OrderedDict()
        self.weight = 0

    def __len__(self) -> int:
        return sum(len(stretch.items) for stretch in self._stretches.values())

    def window(self, tenant_id: str, *, after: int, limit: int) -> tuple[list[Window], int]:
        """Up to ``limit`` events after ``after`` that the cache holds, and the sequence number
        up to which they are all the log has (where a read for more must start)."""
        stretch = self._stretches.get(tenant_id)
        if stretch is None or not stretch.after <= after < stretch.upto:
            return [], after
        self._stretches.move_to_end(tenant_id)
        start = bisect.bisect_right(stretch.items, after, key=_seq)
        found = stretch.items[start : start + limit]
        if len(found) == limit:
            return found, found[-1][0].seq
        return found, stretch.upto

    def mean_weight(self, tenant_id: str) -> int | None:
        """What an event of the tenant's kept stretch weighs on average (see ``_weight``); None
        if none is kept."""
        stretch = self._stretches.get(tenant_id)
        if stretch is None or not stretch.items:
            return None
        return stretch.weight // len(stretch.items)

    def add(self, tenant_id: str, *, after: int, read: list[Window]) -> None:
        """Store a committed read of every event in ``(after, read[-1].seq]``. It extends the
        tenant's stretch if it starts inside it; a stretch that does not connect replaces the
        kept one only if it lies further on (the webhooks at the head of the log share more)."""
        if not read:
            return
        upto = read[-1][0].seq
        stretch = self._stretches.get(tenant_id)
        if stretch is not None and stretch.after <= after <= stretch.upto:
            if upto <= stretch.upto:
                return
            fresh = read[bisect.bisect_right(read, stretch.upto, key=_seq) :]
            stretch.items.extend(fresh)
            stretch.upto = upto
            added = sum(map(_weight, fresh))
        elif stretch is None or after > stretch.upto:
            if stretch is not None:
                self.weight -= stretch.weight
            stretch = _Stretch(after, upto, list(read))
            self._stretches[tenant_id] = stretch
            added = sum(map(_weight, read))
        else:
            return
        stretch.weight += added
        self.weight += added
        self._stretches.move_to_end(tenant_id)
        self._trim(stretch, self.per_tenant)
        while self.weight > self.total and len(self._stretches) > 1:
            _, oldest = self._stretches.popitem(last=False)
            self.weight -= oldest.weight
        self._trim(stretch, self.total)

    def _trim(self, stretch: _Stretch, keep: int) -> None:
        """Drop the oldest events of ``stretch`` until it weighs at most ``keep``."""
        drop, excess = 0, stretch.weight - keep
        while excess > 0:
            dropped = _weight(stretch.items[drop])
            excess -= dropped
            stretch.weight -= dropped
            self.weight -= dropped
            drop += 1
        if drop:
            stretch.after = stretch.items[drop - 1][0].seq
            del stretch.items[:drop]


def _seq(item: Window) -> int:
    return item[0].seq
