"""Log in, change password, log out, and who am I."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from sciti.access import (
    AuthenticationRequired,
    PermissionDenied,
    Principal,
    change_password,
    login,
    optional_principal,
    revoke_token,
)
from sciti.api.deps import CurrentUser, SessionDep, SettingsDep
from sciti.ops import session_scope
from sciti.settings import Settings

router = APIRouter(tags=["auth"])
log = logging.getLogger("sciti.access")


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'. Shown only now.")
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_at: datetime
    expires_in: int = Field(description="Seconds until the token expires.")
    username: str


class PasswordChange(BaseModel):
    username: str | None = Field(None, description="Needed when no bearer token is sent (first login).")
    current_password: str
    new_password: str = Field(description="At least 12 characters; common passwords are refused.")


class Me(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    permissions: list[str]
    office_code: str | None
    token_expires_at: datetime | None


_CREDENTIALS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}},
}


async def _credentials(request: Request) -> tuple[str, str]:
    """Username and password from an OAuth2 form post or a JSON body."""
    ctype = request.headers.get("content-type", "")
    data: Any
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        data = dict(await request.form())
    else:
        try:
            data = await request.json()
        except ValueError:
            data = None
    data = data if isinstance(data, dict) else {}
    missing = [f for f in ("username", "password") if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        # Same envelope as any other invalid body (fields listed), though this body is parsed by hand.
        raise RequestValidationError(
            [{"loc": ("body", f), "msg": "Field required", "type": "missing"} for f in missing]
        )
    return data["username"], data["password"]


def _login(settings: Settings, username: str, password: str) -> TokenResponse:
    try:
        with session_scope(settings.resolved_ops_db_url) as session:
            issued = login(session, username, password, settings.token_ttl_minutes)
    except Exception as exc:
        log.warning("login refused", extra={"user": username[:150], "reason": getattr(exc, "code", "error")})
        raise
    log.info("login", extra={"user": issued.username})
    return TokenResponse(
        access_token=issued.token,
        expires_at=issued.expires_at,
        expires_in=settings.token_ttl_minutes * 60,
        username=issued.username,
    )


@router.post(
    "/auth/token",
    summary="Log in: username and password for a bearer token (no token needed)",
    response_model=TokenResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _CREDENTIALS_BODY},
                "application/json": {"schema": _CREDENTIALS_BODY},
            },
        }
    },
)
async def token(request: Request, settings: SettingsDep) -> TokenResponse:
    """Every refusal (unknown user, wrong password, locked, disabled) gets the same answer.
    After 10 failures an account is locked for 15 minutes. An account with a one-time password
    gets ``password_change_required`` and must use ``POST /api/v1/auth/password`` first."""
    username, password = await _credentials(request)
    return await run_in_threadpool(_login, settings, username, password)


async def _password_changer(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> str:
    """Who changes a password: the bearer token's owner, or whoever names user and current password.

    Runs before body validation, so a caller with no credential at all gets 401, never a 422.
    """
    if principal is not None:
        return principal.username
    try:
        body = await request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("username") and body.get("current_password"):
        return str(body["username"])
    raise AuthenticationRequired(
        "changing a password needs a bearer token, or your username and current password",
        remedy='send {"username": ..., "current_password": ..., "new_password": ...}',
    )


@router.post("/auth/password", summary="Change your own password (also the way out of a one-time password)")
def password(
    body: PasswordChange,
    username: Annotated[str, Depends(_password_changer)],
    session: SessionDep,
) -> dict[str, Any]:
    """Checks the current password, applies the password rules, and revokes every token of the
    account: log in again afterwards."""
    if body.username and body.username.strip().lower() != username:
        raise PermissionDenied(
            "you can only change your own password",
            remedy="an administrator resets other accounts with `sciti user passwd NAME`",
        )
    user = change_password(session, username, body.current_password, body.new_password)
    log.info("password changed", extra={"user": user.username})
    return {"changed": True, "username": user.username, "next": "log in again with POST /api/v1/auth/token"}


@router.post("/auth/logout", summary="Revoke the bearer token used for this request")
def logout(principal: CurrentUser, session: SessionDep) -> dict[str, Any]:
    revoked = revoke_token(session, principal.token_id) if principal.token_id is not None else False
    log.info("logout", extra={"user": principal.username})
    return {"revoked": revoked}


@router.get("/me", summary="The account behind the bearer token", response_model=Me)
def me(principal: CurrentUser) -> Me:
    return Me(
        username=principal.username,
        display_name=principal.display_name,
        roles=list(principal.roles),
        permissions=sorted(principal.permissions),
        office_code=principal.office_code,
        token_expires_at=principal.token_expires_at,
    )
