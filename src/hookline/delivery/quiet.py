"""Where a tenant's log is known to hold nothing a filter takes, shared by a worker's webhooks.

A webhook that finds nothing waiting after ``after`` has learnt more than its own state: the
log holds no event its filter takes in ``(after, head]``, ``head`` being the log's head as the
worker knew it before the read (every event up to it had committed, see ``Worker._heads``).
Sequence numbers commit in order (``store.events.append_events``) and the log only grows at
its end, so that stays true for good, whatever the transaction that read it did afterwards.
Every webhook of the tenant with the same filter can use it: ten thousand idle webhooks
starting together, or poked together by the worker's safety-net poll, need one read of the
log between them instead of one each.

One stretch is kept per (tenant, filter), the one furthest on; at most ``limit`` of them,
least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict

from hookline.domain.webhooks import CategoryFilter

LIMIT = 4096  # (tenant, filter) pairs remembered, a couple of hundred bytes each

_Key = tuple[str, CategoryFilter]


class QuietStretches:
    """``add`` what a read showed; ``upto`` says how far past a point nothing waits."""

    def __init__(self, *, limit: int = LIMIT) -> None:
        self.limit = limit
        self._stretches: OrderedDict[_Key, tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._stretches)

    def upto(self, tenant_id: str, category_filter: CategoryFilter, *, after: int) -> int:
        """The last sequence number up to which the log is known to hold nothing the filter
        takes after ``after``; ``after`` itself if nothing is known."""
        key = (tenant_id, category_filter)
        stretch = self._stretches.get(key)
        if stretch is None or not stretch[0] <= after < stretch[1]:
            return after
        self._stretches.move_to_end(key)
        return stretch[1]

    def add(
        self, tenant_id: str, category_filter: CategoryFilter, *, after: int, upto: int
    ) -> None:
        """Remember that the log holds nothing the filter takes in ``(after, upto]``. A stretch
        that overlaps or touches the kept one joins it; one wholly behind it is dropped (the
        webhooks near the head share more), one wholly ahead replaces it."""
        if upto <= after:
            return
        key = (tenant_id, category_filter)
        kept = self._stretches.get(key)
        if kept is not None:
            if after <= kept[1] and upto >= kept[0]:
                after, upto = min(after, kept[0]), max(upto, kept[1])
            elif upto < kept[0]:
                return
        self._stretches[key] = (after, upto)
        self._stretches.move_to_end(key)
        while len(self._stretches) > self.limit:
            self._stretches.popitem(last=False)
