"""Data policy endpoints: exports, unmask, the audit trail."""

from __future__ import annotations

EXPORT = frozenset({"analyst", "targeting_officer", "supervisor", "data_engineer"})
UNMASK = frozenset({"analyst", "targeting_officer", "supervisor"})
AUDIT = frozenset({"security_officer", "administrator"})

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/sql/export"): EXPORT,
    ("POST", "/api/v1/unmask"): UNMASK,
    ("GET", "/api/v1/audit"): AUDIT,
    ("POST", "/api/v1/audit/verify"): AUDIT,
}
