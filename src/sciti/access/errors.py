"""Errors of identity and access control. Each maps to one HTTP status in the API envelope."""

from __future__ import annotations

from sciti.errors import SCITIError


class AccessError(SCITIError):
    code = "access_error"
    http_status = 403


class AuthenticationRequired(AccessError):
    code = "authentication_required"
    http_status = 401

    default_message = "this endpoint needs a bearer token"
    default_remedy = (
        "get a token with POST /api/v1/auth/token (or `sciti user token NAME`) and send it as "
        "'Authorization: Bearer <token>'"
    )


class InvalidToken(AuthenticationRequired):
    code = "invalid_token"

    default_message = "the bearer token is unknown, expired or revoked"
    default_remedy = "log in again with POST /api/v1/auth/token to get a new token"


class InvalidCredentials(AccessError):
    """One message for unknown user, wrong password, locked or disabled: no user enumeration."""

    code = "invalid_credentials"
    http_status = 401

    default_message = "username or password is incorrect, or the account is locked or disabled"
    default_remedy = (
        "check the username and password; after 10 failed attempts an account is locked for 15 "
        "minutes; ask an administrator if it persists"
    )


class PasswordChangeRequired(AccessError):
    code = "password_change_required"
    http_status = 403

    default_remedy = (
        "set your own password with POST /api/v1/auth/password "
        '{"username": ..., "current_password": ..., "new_password": ...}, then log in again'
    )

    def __init__(self, username: str, **kw):
        super().__init__(f"user {username!r} must change the one-time password before logging in", **kw)


class PermissionDenied(AccessError):
    code = "forbidden"
    http_status = 403


class WeakPassword(AccessError):
    code = "weak_password"
    http_status = 422


class AccountError(AccessError):
    """Administration of accounts: unknown user, duplicate name, unknown role."""

    code = "account_error"
    http_status = 400
