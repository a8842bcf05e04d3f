"""Accounts: browser sessions, your own MFA, and account administration (users.manage)."""

from __future__ import annotations

from tests.api.allowed.groups import EVERYONE, holders

ADMINS = holders("users.manage")

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/auth/csrf"): EVERYONE,
    ("GET", "/api/v1/mfa"): EVERYONE,
    ("POST", "/api/v1/mfa/enrol"): EVERYONE,
    ("POST", "/api/v1/mfa/confirm"): EVERYONE,
    ("POST", "/api/v1/mfa/recovery-codes"): EVERYONE,
    ("POST", "/api/v1/mfa/disable"): EVERYONE,
    ("GET", "/api/v1/users"): ADMINS,
    ("POST", "/api/v1/users"): ADMINS,
    ("GET", "/api/v1/users/dormant"): ADMINS,
    ("GET", "/api/v1/users/{username}"): ADMINS,
    ("POST", "/api/v1/users/{username}/disable"): ADMINS,
    ("POST", "/api/v1/users/{username}/enable"): ADMINS,
    ("POST", "/api/v1/users/{username}/expire"): ADMINS,
    ("POST", "/api/v1/users/{username}/unlock"): ADMINS,
    ("POST", "/api/v1/users/{username}/reset-password"): ADMINS,
    ("POST", "/api/v1/users/{username}/reset-mfa"): ADMINS,
}
