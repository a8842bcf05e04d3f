"""Your own second factor: enrol a TOTP authenticator, confirm it, recovery codes, turn it off.

Every account manages its own MFA (no permission beyond being logged in); administrators reset
other people's with ``POST /api/v1/users/{username}/reset-mfa``. Changing MFA asks for the
current password too (when the account has one), so a stolen token alone cannot replace it.
Every password and one-time code checked here counts like a login (lockout, per-address throttle,
``login.failed`` in the trail; decision 0082), so a stolen token is no way to guess either.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from sciti.access import (
    MfaError,
    Principal,
    confirm,
    enrol,
    get_user,
    load_instance_key,
    mfa_enabled,
    remove_mfa,
    verify_second_factor,
)
from sciti.access.accounts import now_utc
from sciti.access.audit import audit
from sciti.access.login import check_one_time_code, reauthenticate
from sciti.access.mfa import new_recovery_codes, recovery_codes_left
from sciti.api.deps import CurrentUser, SessionDep, SettingsDep
from sciti.ops import User
from sciti.ops.account_tables import MfaSecret

router = APIRouter(tags=["mfa"])


class MfaStatus(BaseModel):
    enabled: bool = Field(description="Login asks for a one-time code.")
    pending: bool = Field(description="Enrolment started, not yet confirmed with a code.")
    recovery_codes_left: int


class PasswordProof(BaseModel):
    password: str | None = Field(None, description="Your current password (needed if the account has one).")


class EnrolAnswer(BaseModel):
    secret: str = Field(description="Base32 secret, shown only now: type it into the app if you cannot scan.")
    otpauth_uri: str = Field(
        description="otpauth:// URI for a QR code (RFC 6238 TOTP, SHA-1, 6 digits, 30 s)."
    )
    next: str = "confirm with POST /api/v1/mfa/confirm {'code': '<6 digits from the app>'}"


class CodeBody(BaseModel):
    code: str = Field(description="The current 6-digit code from the authenticator app.")


class CodeAndPassword(CodeBody):
    password: str | None = Field(None, description="Your current password (needed if the account has one).")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="One-time codes, shown only now; each works once.")


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


def _user_with_password(
    session: Session, request: Request, principal: Principal, password: str | None, step: str
) -> User:
    """The caller's account once its current password is proved (counted like a login)."""
    user = get_user(session, principal.username)
    reauthenticate(session, user, password, client=_source(request), step=step)
    return user


@router.get("/mfa", summary="Your MFA state", response_model=MfaStatus)
def status(principal: CurrentUser, session: SessionDep) -> MfaStatus:
    row = session.get(MfaSecret, principal.user_id)
    return MfaStatus(
        enabled=mfa_enabled(session, principal.user_id),
        pending=row is not None and row.confirmed_at is None,
        recovery_codes_left=recovery_codes_left(session, principal.user_id),
    )


@router.post(
    "/mfa/enrol", summary="Start MFA enrolment: a new TOTP secret, shown once", response_model=EnrolAnswer
)
def start(
    body: PasswordProof, request: Request, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> EnrolAnswer:
    user = _user_with_password(session, request, principal, body.password, "mfa.enrol")
    if user.password_hash is None:
        raise MfaError(
            f"account {user.username!r} has no password to protect (a service or single sign-on account)",
            remedy="single sign-on users get MFA from the identity provider; service accounts use tokens",
        )
    started = enrol(session, user, load_instance_key(settings.home))
    audit(
        session,
        actor=user.username,
        action="mfa.enrol",
        target=f"user:{user.username}",
        source=_source(request),
    )
    return EnrolAnswer(secret=started.secret, otpauth_uri=started.uri)


@router.post(
    "/mfa/confirm",
    summary="Finish enrolment with a code; returns recovery codes",
    response_model=RecoveryCodes,
)
def finish(
    body: CodeBody, request: Request, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> RecoveryCodes:
    user = get_user(session, principal.username)
    now, key = now_utc(), load_instance_key(settings.home)
    codes = check_one_time_code(
        session,
        user,
        lambda: confirm(session, user, key, body.code, now),
        client=_source(request),
        step="mfa.confirm",
        now=now,
    )
    audit(
        session,
        actor=user.username,
        action="mfa.confirm",
        target=f"user:{user.username}",
        source=_source(request),
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post(
    "/mfa/recovery-codes",
    summary="Replace your recovery codes (needs a current code)",
    response_model=RecoveryCodes,
)
def renew(
    body: CodeBody, request: Request, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> RecoveryCodes:
    user = get_user(session, principal.username)
    now, key = now_utc(), load_instance_key(settings.home)
    check_one_time_code(
        session,
        user,
        lambda: verify_second_factor(session, user, key, body.code, now),
        client=_source(request),
        step="mfa.recovery_codes",
        now=now,
    )
    codes = new_recovery_codes(session, user.id, now)
    audit(
        session,
        actor=user.username,
        action="mfa.recovery_codes",
        target=f"user:{user.username}",
        source=_source(request),
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post("/mfa/disable", summary="Turn your MFA off (needs a current code and your password)")
def disable(
    body: CodeAndPassword,
    request: Request,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    user = get_user(session, principal.username)
    if not mfa_enabled(session, user.id):
        raise MfaError(f"user {user.username!r} has no MFA to turn off")
    now, key = now_utc(), load_instance_key(settings.home)
    reauthenticate(
        session,
        user,
        body.password,
        client=_source(request),
        step="mfa.disable",
        second_factor=lambda: verify_second_factor(session, user, key, body.code, now),
        now=now,
    )
    remove_mfa(session, user.id)
    audit(
        session,
        actor=user.username,
        action="mfa.disable",
        target=f"user:{user.username}",
        source=_source(request),
    )
    return {"disabled": True}
