"""Secrets (metadata for secrets.list, changes for secrets.manage) and personal-data protection
(retention, consent, transfer rules: privacy.manage)."""

from __future__ import annotations

LIST = frozenset({"data_engineer", "security_officer", "administrator"})
MANAGE = frozenset({"data_engineer", "administrator"})
PRIVACY = frozenset({"security_officer", "administrator"})

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/secrets"): LIST,
    ("GET", "/api/v1/secrets/{name}"): LIST,
    ("PUT", "/api/v1/secrets/{name}"): MANAGE,
    ("POST", "/api/v1/secrets/{name}/rotate"): MANAGE,
    ("PUT", "/api/v1/secrets/{name}/shared-with"): MANAGE,
    ("DELETE", "/api/v1/secrets/{name}"): MANAGE,
}
ALLOWED |= {
    ("GET", "/api/v1/privacy/retention"): PRIVACY,
    ("PUT", "/api/v1/privacy/retention/{kind}"): PRIVACY,
    ("DELETE", "/api/v1/privacy/retention/{kind}"): PRIVACY,
    ("POST", "/api/v1/privacy/retention/run"): PRIVACY,
    ("GET", "/api/v1/privacy/consents"): PRIVACY,
    ("POST", "/api/v1/privacy/consents"): PRIVACY,
    ("POST", "/api/v1/privacy/consents/{consent_id}/withdraw"): PRIVACY,
    ("POST", "/api/v1/privacy/consents/check"): PRIVACY,
    ("GET", "/api/v1/privacy/transfer-rules"): PRIVACY,
    ("PUT", "/api/v1/privacy/transfer-rules/{partner}/{kind}"): PRIVACY,
    ("DELETE", "/api/v1/privacy/transfer-rules/{partner}/{kind}"): PRIVACY,
    ("POST", "/api/v1/privacy/transfer-rules/check"): PRIVACY,
}
