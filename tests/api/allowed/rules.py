"""Risk rules: read (rules.read), draft and dry-run (rules.write), approve or reject (rules.approve)."""

from __future__ import annotations

from tests.api.allowed.groups import holders

READ = holders("rules.read")
WRITE = holders("rules.write")
APPROVE = holders("rules.approve")

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/rules"): READ,
    ("GET", "/api/v1/rule-columns/{kind}"): READ,
    ("POST", "/api/v1/rules"): WRITE,
    ("POST", "/api/v1/rules/dry-run"): WRITE,
    ("GET", "/api/v1/rules/{rule_id}"): READ,
    ("POST", "/api/v1/rules/{rule_id}/versions"): WRITE,
    ("GET", "/api/v1/rules/{rule_id}/versions/{version}"): READ,
    ("GET", "/api/v1/rules/{rule_id}/diff"): READ,
    ("GET", "/api/v1/rules/{rule_id}/history"): READ,
    ("POST", "/api/v1/rules/{rule_id}/versions/{version}/submit"): WRITE,
    ("POST", "/api/v1/rules/{rule_id}/versions/{version}/approve"): APPROVE,
    ("POST", "/api/v1/rules/{rule_id}/versions/{version}/reject"): APPROVE,
    ("POST", "/api/v1/rules/{rule_id}/retire"): WRITE,
    ("POST", "/api/v1/rules/{rule_id}/versions/{version}/dry-run"): WRITE,
    ("GET", "/api/v1/rules/{rule_id}/dry-runs"): READ,
}
