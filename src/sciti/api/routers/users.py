"""Account administration over HTTP (``users.manage``): list, create, disable, enable, expire,
unlock, reset password, reset MFA, and the dormant-account report. Every change is audited.

Request bodies are strict: a field the endpoint does not know is refused (422 naming it, with the
closest field it does know), never skipped. A skipped ``"office"`` once made an account bound to
no office, which sees every office's records (decision 0101).
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.orm import Session

from sciti.access import (
    Principal,
    account_state,
    create_user,
    dormant_accounts,
    get_user,
    list_users,
    mfa_enabled,
    require,
    reset_mfa,
    reset_password,
    set_disabled,
    set_expiry,
    unlock,
)
from sciti.access.accounts import OFFICE_MAX_LENGTH, active_token_count
from sciti.access.audit import audit
from sciti.api.deps import SessionDep
from sciti.ops import User

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require("users.manage"))]


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    office_code: str | None
    state: str = Field(description="active, disabled, expired, locked or must_change_password")
    mfa: bool
    local_password: bool = Field(description="False for service and single sign-on accounts.")
    tokens: int = Field(description="Live bearer tokens.")
    expires_at: datetime | None
    last_login_at: datetime | None
    created_at: datetime | None


class StrictBody(BaseModel):
    """A request body that refuses fields it does not know, each named, with the closest known one."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = list(cls.model_fields)
        unknown = [k for k in data if k not in cls.model_fields]
        if not unknown:
            return data
        errors = []
        for name in unknown:
            close = difflib.get_close_matches(str(name).lower(), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"the fields are: {', '.join(known)}"
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("extra_forbidden", "unknown field ({hint})", {"hint": hint}),
                    loc=(str(name),),
                    input=None,  # never the value: the envelope does not echo what was sent
                )
            )
        # A ValidationError keeps each field's location (a ValueError would name none).
        raise ValidationError.from_exception_data(cls.__name__, errors)


class NewUser(StrictBody):
    username: str
    roles: list[str] = Field(min_length=1)
    office_code: str | None = Field(
        None,
        min_length=1,
        max_length=OFFICE_MAX_LENGTH,
        description="The office (or control point) the account is bound to: it sees only records "
        "handled there. Omitted or null: every office.",
    )
    display_name: str = ""
    service: bool = Field(False, description="No password: can only hold tokens an administrator issues.")
    expires_at: datetime | None = None


class Created(BaseModel):
    user: UserOut
    one_time_password: str | None = Field(description="Shown only now; must be changed at first login.")


class Expiry(StrictBody):
    expires_at: datetime | None = Field(description="When the account stops working; null: never.")


class DormantOut(BaseModel):
    username: str
    roles: list[str]
    last_login_at: datetime | None
    created_at: datetime | None
    days_idle: int


def _out(session: Session, user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name or "",
        roles=list(user.roles or []),
        office_code=user.office_code,
        state=account_state(session, user),
        mfa=mfa_enabled(session, user.id),
        local_password=user.password_hash is not None,
        tokens=active_token_count(session, user.id),
        expires_at=user.expires_at,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def _audit(session: Session, request: Request, admin: Principal, action: str, username: str, **details: Any):
    source = request.client.host if request.client else None
    audit(
        session,
        actor=admin.username,
        action=action,
        target=f"user:{username}",
        source=source,
        details=details,
    )


@router.get("/users", summary="All accounts with their state", response_model=list[UserOut])
def users(admin: Admin, session: SessionDep) -> list[UserOut]:
    return [_out(session, u) for u in list_users(session)]


@router.post("/users", summary="Create an account (returns a one-time password)", response_model=Created)
def create(body: NewUser, request: Request, admin: Admin, session: SessionDep) -> Created:
    user, one_time = create_user(
        session,
        body.username,
        body.roles,
        office_code=body.office_code,
        display_name=body.display_name,
        service=body.service,
    )
    user.expires_at = body.expires_at
    _audit(
        session,
        request,
        admin,
        "user.create",
        user.username,
        roles=list(user.roles),
        office_code=user.office_code,
        service=body.service,
    )
    return Created(user=_out(session, user), one_time_password=one_time)


@router.get(
    "/users/dormant",
    summary="Enabled accounts with no login (or token use) in N days",
    response_model=list[DormantOut],
)
def dormant(
    admin: Admin, session: SessionDep, days: Annotated[int, Query(ge=1, le=3650)] = 90
) -> list[DormantOut]:
    return [
        DormantOut(
            username=d.username,
            roles=list(d.roles),
            last_login_at=d.last_login_at,
            created_at=d.created_at,
            days_idle=d.days_idle,
        )
        for d in dormant_accounts(session, days)
    ]


@router.get("/users/{username}", summary="One account", response_model=UserOut)
def one(username: str, admin: Admin, session: SessionDep) -> UserOut:
    return _out(session, get_user(session, username))


@router.post("/users/{username}/disable", summary="Disable an account (ends its tokens and sessions)")
def disable(username: str, request: Request, admin: Admin, session: SessionDep) -> dict[str, Any]:
    revoked = set_disabled(session, username, True)
    _audit(session, request, admin, "user.disable", username, tokens_revoked=revoked)
    return {"username": username, "disabled": True, "tokens_revoked": revoked}


@router.post("/users/{username}/enable", summary="Enable a disabled account")
def enable(username: str, request: Request, admin: Admin, session: SessionDep) -> dict[str, Any]:
    set_disabled(session, username, False)
    _audit(session, request, admin, "user.enable", username)
    return {"username": username, "disabled": False}


@router.post("/users/{username}/expire", summary="Set or clear the account's expiry date")
def expire(username: str, body: Expiry, request: Request, admin: Admin, session: SessionDep) -> UserOut:
    user = set_expiry(session, username, body.expires_at)
    when = body.expires_at.isoformat() if body.expires_at else None
    _audit(session, request, admin, "user.expire", user.username, expires_at=when)
    return _out(session, user)


@router.post("/users/{username}/unlock", summary="Lift a lockout after failed logins")
def unlock_(username: str, request: Request, admin: Admin, session: SessionDep) -> UserOut:
    user = unlock(session, username)
    _audit(session, request, admin, "user.unlock", user.username)
    return _out(session, user)


@router.post(
    "/users/{username}/reset-password",
    summary="New one-time password (forced change at next login; tokens revoked)",
)
def reset_password_(username: str, request: Request, admin: Admin, session: SessionDep) -> dict[str, Any]:
    one_time = reset_password(session, username)
    _audit(session, request, admin, "user.reset_password", username)
    return {"username": username, "one_time_password": one_time, "must_change_password": True}


@router.post("/users/{username}/reset-mfa", summary="Remove the user's second factor (they enrol again)")
def reset_mfa_(username: str, request: Request, admin: Admin, session: SessionDep) -> dict[str, Any]:
    had = reset_mfa(session, username)
    _audit(session, request, admin, "mfa.reset", username, had_mfa=had)
    return {"username": username, "mfa_removed": had}
