"""Prometheus metrics, one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_PUBLISHED = Counter(
    "hookline_events_published", "Events appended to the log.", registry=REGISTRY
)
EVENTS_DELIVERED = Counter(
    "hookline_events_delivered", "Events in packages acknowledged with 2xx.", registry=REGISTRY
)
PACKAGES = Counter(
    "hookline_packages",
    "Packages finished, by result (delivered, failed).",
    ["result"],
    registry=REGISTRY,
)
ATTEMPTS = Counter(
    "hookline_attempts", "HTTP attempts, by outcome class.", ["outcome"], registry=REGISTRY
)
ATTEMPT_SECONDS = Histogram(
    "hookline_attempt_duration_seconds",
    "Duration of HTTP attempts.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "hookline_packages_by_status",
    "Packages waiting: status=pending (all), status=retrying (pending after a failed attempt).",
    ["status"],
    registry=REGISTRY,
)
WEBHOOKS_HELD = Gauge(
    "hookline_worker_webhooks", "Webhooks this worker holds the lease of.", registry=REGISTRY
)


def outcome_class(status: int | None) -> str:
    if status is None:
        return "network_error"
    return f"{status // 100}xx"
