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


class MfaRequired(AccessError):
    """The password was right and the account has MFA: the second factor is missing."""

    code = "mfa_required"
    http_status = 401

    default_message = "this account uses multi-factor authentication: a one-time code is needed"
    default_remedy = (
        "send the 6-digit code from your authenticator app as the 'totp' field along with username and "
        "password (or one of your recovery codes)"
    )


class InvalidMfaCode(AccessError):
    code = "invalid_mfa_code"
    http_status = 401

    default_message = "the one-time code is wrong, expired or was already used"
    default_remedy = (
        "wait for the next code in your authenticator app and try again, or use a recovery code; "
        "an administrator can reset MFA with `sciti user mfa-reset NAME`"
    )


class MfaError(AccessError):
    """Enrolment and management of the second factor: nothing to confirm, already enrolled, no key."""

    code = "mfa_error"
    http_status = 400


class LoginThrottled(AccessError):
    """Too many failed logins from one client address: refused before any password is checked."""

    code = "login_throttled"
    http_status = 429

    default_message = "too many failed logins from this address"
    default_remedy = "wait 15 minutes before trying again; ask an administrator if it persists"


class CsrfFailed(AccessError):
    code = "csrf_failed"
    http_status = 403

    default_message = "a request made with the session cookie lacks a valid CSRF token"
    default_remedy = (
        "send the session's CSRF token (returned at login and by GET /api/v1/auth/csrf) in the "
        "'X-CSRF-Token' header or the 'csrf_token' form field"
    )


class SsoError(AccessError):
    """Single sign-on refused: not configured, bad state, bad id_token, domain or role not allowed."""

    code = "sso_error"
    http_status = 401

    default_remedy = "start again from /api/v1/auth/sso/login; an administrator can check the SSO settings"
