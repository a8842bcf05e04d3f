"""Risk engine endpoints: assessment (clearance systems, targeting officers), queue, work, report."""

from __future__ import annotations

ASSESS = frozenset({"targeting_officer", "clearance_system"})
QUEUE = frozenset({"analyst", "targeting_officer", "supervisor"})
WORK = frozenset({"targeting_officer", "supervisor"})
REPORT = frozenset({"viewer", "analyst", "targeting_officer", "supervisor"})

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/risk/assess"): ASSESS,
    ("GET", "/api/v1/risk/queue"): QUEUE,
    ("POST", "/api/v1/risk/queue/{assessment_id}/assign"): WORK,
    ("POST", "/api/v1/risk/queue/{assessment_id}/override"): WORK,
    ("POST", "/api/v1/risk/inspections"): WORK,
    ("GET", "/api/v1/risk/report"): REPORT,
    ("GET", "/api/v1/risk/status"): REPORT,
}
