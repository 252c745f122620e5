"""What a worker keeps in memory about each webhook it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hookline.delivery.eventcache import Window
from hookline.delivery.signing import Presigned
from hookline.domain.webhooks import CategoryFilter, WebhookSpec, delay_seconds
from hookline.store.db import Confirmation
from hookline.store.deliveries import Package


@dataclass(frozen=True, slots=True)
class Opening:
    """What planning found, to apply to the runtime once its transaction committed: a package
    opened (with its bytes), or when to look again, or that the state moved underneath."""

    package: Package | None = None
    body: bytes | None = None
    due: float | None = None
    floor: int | None = None  # nothing matching waits up to here
    pending_bytes: int = 0
    stale: bool = False
    lookahead: list[Window] = field(default_factory=list)  # see _take
    read: tuple[int, list[Window]] | None = None  # every event after the int, for EventCache
    confirmation: Confirmation | None = None  # whether ``package`` opened, if known only later
    presigned: Presigned | None = None  # the headers of ``package``'s first attempt

    @property
    def moved_underneath(self) -> bool:
        """The state moved (see ``open_package``): nothing opened, the runtime is stale."""
        confirmed = self.confirmation is None or self.confirmation.took_effect
        return self.stale or not confirmed


@dataclass(slots=True)
class Runtime:
    """One held webhook. ``cursor`` is the last seq packaged; nothing matching waits in
    ``(cursor, floor]``. ``due`` is when the worker should look at it next (epoch seconds)."""

    webhook_id: str
    tenant_id: str
    spec: WebhookSpec
    settings_at: datetime  # the webhook's updated_at when loaded (see open_package)
    secrets: list[str]
    cursor: int
    failing_since: datetime | None
    package: Package | None
    filter: CategoryFilter = field(init=False)
    delay: float = field(init=False)
    floor: int = 0
    due: float | None = None
    pending_bytes: int = 0
    busy: bool = False
    poked: bool = False  # new events arrived while busy
    stale: bool = False  # config changed while busy
    handing_over: bool = False  # to be released once its turn ends (see Worker._excess)
    body: bytes | None = None  # the open package's bytes, kept only for its first attempt
    presigned: Presigned | None = None  # and its headers, signed ahead (see Presigned)
    lookahead: list[Window] = field(default_factory=list)  # see Worker._window

    def __post_init__(self) -> None:
        self.filter = self.spec.category_filter
        self.delay = float(delay_seconds(self.spec.delay))

    @property
    def after(self) -> int:
        return max(self.cursor, self.floor)

    def same_queue_as(self, other: Runtime) -> bool:
        """Whether ``other`` describes the same queue position and settings (a no-op reload)."""
        package_id = self.package.id if self.package else None
        other_package_id = other.package.id if other.package else None
        return (
            self.spec == other.spec
            and self.settings_at == other.settings_at
            and self.cursor == other.cursor
            and package_id == other_package_id
        )
