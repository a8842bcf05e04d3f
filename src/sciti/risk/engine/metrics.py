"""Prometheus metrics of the engine (process default registry: they appear on ``/metrics``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

ASSESSED = Counter(
    "sciti_risk_assessments", "Records assessed, by kind, lane and path.", ["kind", "lane", "path"]
)
BUFFER_RECEIVED = Counter(
    "sciti_risk_buffer_received", "Assessments committed to the durable buffer (ops database)."
)
BUFFER_FLUSHED = Counter(
    "sciti_risk_buffer_flushed", "Assessments flushed from the buffer to risk.assessments."
)
BUFFER_PENDING = Gauge("sciti_risk_buffer_pending", "Assessments in the buffer not yet in the lake.")
FLUSH_FAILURES = Counter("sciti_risk_buffer_flush_failures", "Flushes to the lake that failed (retried).")
MODEL_ALERT = Gauge(
    "sciti_risk_model_unavailable",
    "1 when a kind's champion model failed to load: served with rules only, or with the previous "
    "champion while a newly promoted one cannot be loaded.",
    ["kind"],
)
MODEL_RELOADS = Counter(
    "sciti_risk_model_reloads",
    "Times the engine swapped a kind's champion model (one promoted, or retired without a successor).",
    ["kind"],
)
RULES_RELOADS = Counter("sciti_risk_rules_reloads", "Times the engine reloaded the active rules.")
REFERENCE_RELOADS = Counter(
    "sciti_risk_reference_reloads", "Times the engine swapped in a newly built feature reference."
)


def count(event: dict[str, Any]) -> None:
    """Show a flusher event on this process's metrics (the server's flusher process sends them)."""
    if "flushed" in event:
        BUFFER_FLUSHED.inc(event["flushed"])
    if "pending" in event:
        BUFFER_PENDING.set(event["pending"])
    if "flush_failed" in event:
        FLUSH_FAILURES.inc()


__all__ = [
    "ASSESSED",
    "BUFFER_FLUSHED",
    "BUFFER_PENDING",
    "BUFFER_RECEIVED",
    "FLUSH_FAILURES",
    "MODEL_ALERT",
    "MODEL_RELOADS",
    "REFERENCE_RELOADS",
    "RULES_RELOADS",
    "count",
]
