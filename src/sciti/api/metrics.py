"""Prometheus metrics of the HTTP server (the process's default registry, so every package's
metrics appear on the same ``/metrics`` page)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sciti import __version__

REQUESTS = Counter(
    "sciti_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "sciti_http_request_duration_seconds",
    "Time from request received to response sent, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_PROGRESS = Gauge("sciti_http_requests_in_progress", "HTTP requests being handled now.")
BUILD = Gauge("sciti_build_info", "SCITI version of this server (value is always 1).", ["version"])
BUILD.labels(version=__version__).set(1)


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The metrics in the Prometheus text exposition format."""
    return generate_latest(registry)


__all__ = ["BUILD", "CONTENT_TYPE", "IN_PROGRESS", "LATENCY", "REQUESTS", "render"]
