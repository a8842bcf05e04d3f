"""Risk engine endpoints: assessment (clearance systems, targeting officers), queue, work, report."""

from __future__ import annotations

ASSESS = frozenset({"targeting_officer", "clearance_system"})
QUEUE = frozenset({"analyst", "targeting_officer", "supervisor"})
WORK = frozenset({"targeting_officer", "supervisor"})
REPORT = frozenset({"viewer", "analyst", "targeting_officer", "supervisor"})
METRICS = frozenset({"administrator", "data_engineer", "security_officer", "monitoring"})
SUPERVISE = frozenset({"supervisor"})  # re-assign a record, taken or not

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/risk/assess"): ASSESS,
    ("GET", "/api/v1/risk/queue"): QUEUE,
    ("POST", "/api/v1/risk/queue/{assessment_id}/assign"): WORK,
    ("POST", "/api/v1/risk/queue/{assessment_id}/override"): WORK,
    ("POST", "/api/v1/risk/queue/{assessment_id}/release"): WORK,
    ("POST", "/api/v1/risk/queue/{assessment_id}/reassign"): SUPERVISE,
    ("POST", "/api/v1/risk/inspections"): WORK,
    ("GET", "/api/v1/risk/report"): REPORT,
    # Engine state (no record data): report readers and those who run the platform (metrics).
    ("GET", "/api/v1/risk/status"): REPORT | METRICS,
}
