"""Foundation endpoints: accounts, batches, quarantine, SQL, push ingest, metrics."""

from __future__ import annotations

from tests.api.allowed.groups import EVERYONE

READERS = frozenset(
    {
        "viewer",
        "analyst",
        "targeting_officer",
        "supervisor",
        "data_engineer",
        "security_officer",
        "administrator",
    }
)
QUERY = frozenset(
    {"analyst", "targeting_officer", "supervisor", "data_engineer", "security_officer", "administrator"}
)
DATA = frozenset({"data_engineer", "administrator"})
METRICS = frozenset({"data_engineer", "security_officer", "administrator", "monitoring"})

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/auth/password"): EVERYONE,
    ("POST", "/api/v1/auth/logout"): EVERYONE,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/batches"): READERS,
    ("GET", "/api/v1/batches/{batch_id}"): READERS,
    ("GET", "/api/v1/quarantine"): DATA,
    ("GET", "/api/v1/quarantine/{record_id}"): DATA,
    ("POST", "/api/v1/quarantine/{record_id}/resubmit"): DATA,
    ("POST", "/api/v1/quarantine/{record_id}/discard"): DATA,
    ("POST", "/api/v1/quarantine/discard"): DATA,
    ("POST", "/api/v1/quarantine/resubmit"): DATA,
    ("POST", "/api/v1/sql"): QUERY,
    ("POST", "/api/v1/ingest/{source}"): DATA,
    ("GET", "/metrics"): METRICS,
}
