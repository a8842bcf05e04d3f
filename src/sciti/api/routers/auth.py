"""Log in (bearer token or browser session), change password, log out, and who am I."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from sciti.access import (
    SESSION_COOKIE,
    AccountError,
    AuthenticationRequired,
    PermissionDenied,
    Principal,
    change_password,
    csrf_token,
    end_session,
    load_instance_key,
    login,
    login_session,
    optional_principal,
    revoke_token,
    verify_login,
)
from sciti.access.audit import audit
from sciti.access.login_csrf import LOGIN_CSRF_COOKIE, LOGIN_CSRF_FIELD, check_login_csrf
from sciti.access.sessions import CSRF_HEADER
from sciti.access.sso import LOGOUT_COOKIE, single_logout_url
from sciti.api.deps import CurrentUser, SessionDep, SettingsDep
from sciti.api.routers import sso_routes
from sciti.ops import session_scope
from sciti.settings import Settings

router = APIRouter(tags=["auth"])
router.include_router(sso_routes.router)
log = logging.getLogger("sciti.access")


class TokenResponse(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'. Shown only now.")
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_at: datetime
    expires_in: int = Field(description="Seconds until the token expires.")
    username: str


class SessionResponse(BaseModel):
    username: str
    csrf_token: str = Field(
        description="Send back as the 'X-CSRF-Token' header (or 'csrf_token' form field) on every "
        "POST, PUT, PATCH or DELETE made with the session cookie."
    )
    expires_at: datetime


class PasswordChange(BaseModel):
    username: str | None = Field(None, description="Needed when no bearer token is sent (first login).")
    current_password: str
    new_password: str = Field(description="At least 12 characters; common passwords are refused.")
    totp: str | None = Field(
        None, description="One-time code, when the account has MFA and no token is sent."
    )


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
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "totp": {
            "type": "string",
            "description": "The current code of the authenticator app, or an unused recovery code "
            "(needed once the account has MFA).",
        },
    },
}
_CREDENTIALS_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _CREDENTIALS_BODY},
            "application/json": {"schema": _CREDENTIALS_BODY},
        },
    }
}


class Credentials(BaseModel):
    username: str
    password: str
    totp: str | None = None


async def _credentials(request: Request) -> Credentials:
    """Username, password and optional one-time code from an OAuth2 form post or a JSON body."""
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
    totp = data.get("totp")
    return Credentials(
        username=data["username"], password=data["password"], totp=totp if isinstance(totp, str) else None
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login(settings: Settings, creds: Credentials, client: str) -> TokenResponse:
    try:
        with session_scope(settings.resolved_ops_db_url) as session:
            issued = login(
                session,
                creds.username,
                creds.password,
                settings.token_ttl_minutes,
                second_factor=creds.totp,
                mfa_key=load_instance_key(settings.home),
                client=client,
            )
    except Exception as exc:
        log.warning(
            "login refused", extra={"user": creds.username[:150], "reason": getattr(exc, "code", "error")}
        )
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
    openapi_extra=_CREDENTIALS_OPENAPI,
)
async def token(request: Request, settings: SettingsDep) -> TokenResponse:
    """Every refusal (unknown user, wrong password, locked, disabled, expired) gets the same answer.
    After 10 failures an account is locked for 15 minutes; after 50 failures from one address in
    15 minutes that address waits 15 minutes (429 ``login_throttled``). An account with MFA needs
    ``totp`` (``mfa_required`` without it). An account with a one-time password gets
    ``password_change_required`` and must use ``POST /api/v1/auth/password`` first."""
    creds = await _credentials(request)
    return await run_in_threadpool(_login, settings, creds, client_address(request))


def set_session_cookie(request: Request, response: Response, session_id: str, max_age: int) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (not sent cross-site), Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _check_login_csrf(request: Request, settings: Settings) -> None:
    """Login CSRF (decision 0057) for the browser-session login.

    A body sent as ``application/json`` cannot come from a cross-site page without a CORS
    preflight, which SCITI never grants, so it needs nothing more. Anything a cross-site form can
    send (form-encoded, multipart, text/plain) must carry the signed login token: the
    ``sciti_login_csrf`` cookie the login page sets, echoed as ``csrf_token`` or ``X-CSRF-Token``.
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        return
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get(LOGIN_CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    key = await run_in_threadpool(load_instance_key, settings.home)
    check_login_csrf(key, request.cookies.get(LOGIN_CSRF_COOKIE), submitted)


def _session_login(settings: Settings, creds: Credentials, client: str, replaces: str | None):
    with session_scope(settings.resolved_ops_db_url) as session:
        user = verify_login(
            session,
            creds.username,
            creds.password,
            second_factor=creds.totp,
            mfa_key=load_instance_key(settings.home),
            client=client,
        )
        return login_session(
            session, user, settings.token_ttl_minutes, client=client, replaces=replaces, method="password"
        )


@router.post(
    "/auth/session",
    summary="Log in for a browser session: sets an HttpOnly cookie, returns its CSRF token",
    response_model=SessionResponse,
    openapi_extra=_CREDENTIALS_OPENAPI,
)
async def session_login(request: Request, response: Response, settings: SettingsDep) -> SessionResponse:
    """Same credentials and refusals as ``/auth/token``. The session id is new at every login
    (whatever cookie the browser came with is ended), and requests that change state with the
    cookie must send the returned CSRF token as ``X-CSRF-Token``. Send the body as
    ``application/json``; a form post must also carry the login page's anti-forgery token
    (``sciti_login_csrf`` cookie echoed as ``csrf_token``), else 403 ``csrf_failed``."""
    await _check_login_csrf(request, settings)
    creds = await _credentials(request)
    started = await run_in_threadpool(
        _session_login, settings, creds, client_address(request), request.cookies.get(SESSION_COOKIE)
    )
    set_session_cookie(request, response, started.session_id, settings.token_ttl_minutes * 60)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    log.info("login", extra={"user": started.username})
    return SessionResponse(
        username=started.username, csrf_token=started.csrf_token, expires_at=started.expires_at
    )


@router.get(
    "/auth/csrf",
    summary="The browser session's CSRF token (for a page that needs it again)",
    response_model=SessionResponse,
)
def session_info(request: Request, principal: CurrentUser, session: SessionDep) -> SessionResponse:
    sid = request.cookies.get(SESSION_COOKIE)
    if principal.session_id is None or not sid:
        raise AccountError(
            "this request did not come with a browser session",
            remedy="log in with POST /api/v1/auth/session; bearer tokens need no CSRF token",
        )
    assert principal.token_expires_at is not None
    return SessionResponse(
        username=principal.username,
        csrf_token=csrf_token(session, sid),
        expires_at=principal.token_expires_at,
    )


async def _password_changer(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> tuple[str, bool]:
    """Who changes a password, and whether they are logged in: the bearer token's (or session's)
    owner, or whoever names user and current password (and one-time code, with MFA).

    Runs before body validation, so a caller with no credential at all gets 401, never a 422.
    """
    if principal is not None:
        return principal.username, True
    try:
        body = await request.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("username") and body.get("current_password"):
        return str(body["username"]), False
    raise AuthenticationRequired(
        "changing a password needs a bearer token, or your username and current password",
        remedy='send {"username": ..., "current_password": ..., "new_password": ...}',
    )


@router.post("/auth/password", summary="Change your own password (also the way out of a one-time password)")
def password(
    request: Request,
    body: PasswordChange,
    changer: Annotated[tuple[str, bool], Depends(_password_changer)],
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Checks the current password, applies the password rules, and revokes every token of the
    account: log in again afterwards. Without a token, an account with MFA also sends ``totp``.
    The current password is checked like a login: a wrong one counts towards the account's lockout
    and the address's throttle, and a blocked address gets 429 ``login_throttled``."""
    username, logged_in = changer
    if body.username and body.username.strip().lower() != username:
        raise PermissionDenied(
            "you can only change your own password",
            remedy="an administrator resets other accounts with `sciti user passwd NAME`",
        )
    user = change_password(
        session,
        username,
        body.current_password,
        body.new_password,
        client=client_address(request),
        second_factor=body.totp,
        mfa_key=None if logged_in else load_instance_key(settings.home),
    )
    audit(
        session,
        actor=user.username,
        action="password.change",
        target=f"user:{user.username}",
        source=client_address(request),
    )
    log.info("password changed", extra={"user": user.username})
    return {"changed": True, "username": user.username, "next": "log in again with POST /api/v1/auth/token"}


def _provider_logout(request: Request, settings: Settings, sid: str) -> str | None:
    """The identity provider's end-session URL, when this browser session came from SSO."""
    try:
        sso = sso_routes.sso_settings(request)
    except Exception:  # a broken [sso] section must not stop anyone logging out
        return None
    key = load_instance_key(settings.home)
    return single_logout_url(sso, key, sid, request.cookies.get(LOGOUT_COOKIE), str(request.base_url))


@router.post("/auth/logout", summary="Revoke the bearer token (or end the browser session) of this request")
def logout(
    request: Request, response: Response, principal: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """For a browser session that came from single sign-on, the answer also holds
    ``end_session_url``: send the browser there so the identity provider ends its session too."""
    sid = request.cookies.get(SESSION_COOKIE)
    extra: dict[str, Any] = {}
    if principal.session_id is not None and sid:
        revoked = end_session(session, sid)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(LOGOUT_COOKIE, path="/")
        url = _provider_logout(request, settings, sid)
        if url:
            extra["end_session_url"] = url
    else:
        revoked = revoke_token(session, principal.token_id) if principal.token_id is not None else False
    audit(session, actor=principal.username, action="logout", source=client_address(request))
    log.info("logout", extra={"user": principal.username})
    return {"revoked": revoked, **extra}


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
