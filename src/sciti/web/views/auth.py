"""Log in (password + one-time code, or single sign-on), change a one-time password, log out,
switch language."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from sciti.access import (
    SESSION_COOKIE,
    MfaRequired,
    PasswordChangeRequired,
    Principal,
    change_password,
    end_session,
    load_instance_key,
    login_session,
    optional_principal,
    verify_login,
)
from sciti.access.audit import audit
from sciti.access.login_csrf import LOGIN_CSRF_COOKIE, check_login_csrf, issue_login_csrf
from sciti.access.sso import LOGOUT_COOKIE, SsoSettings, safe_next, single_logout_url
from sciti.errors import SCITIError
from sciti.ops import session_scope
from sciti.ops.web_tables import UserPreference
from sciti.settings import Settings
from sciti.web.i18n import LANG_COOKIE, LANGUAGES
from sciti.web.render import page, render, settings_of

router = APIRouter()
YEAR = 365 * 24 * 3600
# Refusals of the login and password pages that have their own status (as the API answers them).
_STATUS = {"code.csrf_failed": 403, "code.login_throttled": 429}


def _client(request: Request) -> str:
    return request.client.host if request.client else "web"


def _sso(request: Request) -> SsoSettings | None:
    parent_ref = getattr(request.app.state, "parent", None)
    parent = parent_ref() if parent_ref else None
    sso = getattr(parent.state, "sso_settings", None) if parent is not None else None
    try:
        return sso or SsoSettings()
    except Exception:  # a broken [sso] section hides the button; the API reports the error
        return None


def _sso_configured(request: Request) -> bool:
    sso = _sso(request)
    return bool(sso and sso.configured)


def _next(value: str | None, root: str) -> str:
    nxt = safe_next(value) if value else ""
    return nxt if nxt.startswith(root + "/") else root + "/"


async def _login_form(request: Request, **context: Any) -> Response:
    """The login (or password change) page with a fresh login-CSRF token in a cookie and the form."""
    token = issue_login_csrf(load_instance_key(settings_of(request).home))
    response = await render(request, "login.html", None, login_csrf=token, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _check_login_csrf(request: Request, submitted: str) -> None:
    """Login CSRF (decision 0057): the form must echo the signed cookie the login page set."""
    key = load_instance_key(settings_of(request).home)
    check_login_csrf(key, request.cookies.get(LOGIN_CSRF_COOKIE), submitted)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return await _login_form(request, next=next or "", sso=_sso_configured(request))


def _start(
    settings: Settings, form: dict[str, str], client: str, replaces: str | None
) -> tuple[Any, str | None]:
    """Check the credentials and open a session; returns it and the user's saved language."""
    with session_scope(settings.resolved_ops_db_url) as session:
        user = verify_login(
            session,
            form["username"],
            form["password"],
            second_factor=form.get("totp") or None,
            mfa_key=load_instance_key(settings.home),
            client=client,
        )
        pref = session.get(UserPreference, user.id)
        started = login_session(
            session, user, settings.token_ttl_minutes, client=client, replaces=replaces, method="password"
        )
        return started, pref.language if pref else None


def _logged_in(request: Request, started: Any, lang: str | None, target: str) -> Response:
    settings = settings_of(request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        started.session_id,
        max_age=settings.token_ttl_minutes * 60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    if lang in LANGUAGES:  # the person's saved choice wins over whatever this browser had
        response.set_cookie(LANG_COOKIE, lang, max_age=YEAR, path="/", samesite="lax")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")  # used: the session has its own token now
    return response


@router.post("/login")
async def login_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    form = {"username": username.strip(), "password": password, "totp": totp.strip()}
    ask_totp = change = False
    try:
        _check_login_csrf(request, csrf_token)
        started, lang = await run_in_threadpool(
            _start, settings_of(request), form, _client(request), request.cookies.get(SESSION_COOKIE)
        )
    except MfaRequired:
        error, ask_totp = "login.need_totp", True
    except PasswordChangeRequired:
        error, change = "login.must_change", True
    except SCITIError as exc:
        error = f"code.{exc.code}"
    else:
        return _logged_in(request, started, lang, _next(next, root))
    return await _login_form(
        request,
        status_code=_STATUS.get(error, 401 if not change else 200),
        next=next,
        error=error,
        username=form["username"],
        ask_totp=ask_totp,
        change=change,
        sso=_sso_configured(request),
    )


def _change(settings: Settings, form: dict[str, str], client: str) -> tuple[Any, str | None]:
    with session_scope(settings.resolved_ops_db_url) as session:
        user = change_password(
            session,
            form["username"],
            form["password"],
            form["new_password"],
            client=client,
            second_factor=form.get("totp") or None,
            mfa_key=load_instance_key(settings.home),
        )
        audit(
            session,
            actor=user.username,
            action="password.change",
            target=f"user:{user.username}",
            source=client,
        )
    return _start(settings, {**form, "password": form["new_password"], "totp": ""}, client, None)


@router.post("/password")
async def password_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """First login with a one-time password: set your own, then you are logged in."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    form = {"username": username.strip(), "password": password, "new_password": new_password, "totp": totp}
    try:
        _check_login_csrf(request, csrf_token)
        started, lang = await run_in_threadpool(_change, settings_of(request), form, _client(request))
    except MfaRequired:
        # The new password is set; an account with MFA logs in with it and a code.
        return await _login_form(request, username=form["username"], ask_totp=True, next=next)
    except SCITIError as exc:
        return await _login_form(
            request,
            status_code=_STATUS.get(f"code.{exc.code}", 422),
            error=f"code.{exc.code}",
            detail=exc.message,
            username=form["username"],
            change=True,
            next=next,
        )
    return _logged_in(request, started, lang, _next(next, root))


def _end(settings: Settings, sid: str, username: str, client: str) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        end_session(session, sid)
        audit(session, actor=username, action="logout", source=client)


def _single_logout(request: Request, sid: str) -> str | None:
    """The identity provider's end-session URL when this was an SSO session (decision 0058)."""
    key = load_instance_key(settings_of(request).home)
    cookie = request.cookies.get(LOGOUT_COOKIE)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    back = f"{request.url.scheme}://{request.url.netloc}{root}/login"
    return single_logout_url(_sso(request), key, sid, cookie, back)


@router.post("/logout")
async def logout(request: Request, principal: Annotated[Principal, Depends(page())]) -> Response:
    """A POST with the CSRF token (the guard checks it): a link elsewhere cannot log you out."""
    sid = request.cookies.get(SESSION_COOKIE)
    provider_logout = None
    if sid:
        await run_in_threadpool(_end, settings_of(request), sid, principal.username, _client(request))
        provider_logout = await run_in_threadpool(_single_logout, request, sid)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    # After an SSO session, on to the identity provider: it ends its own session too.
    response = RedirectResponse(provider_logout or f"{root}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(LOGOUT_COOKIE, path="/")
    return response


def _save_language(settings: Settings, user_id: int, lang: str) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        pref = session.get(UserPreference, user_id)
        if pref is None:
            session.add(UserPreference(user_id=user_id, language=lang))
        else:
            pref.language = lang


@router.post("/language")
async def set_language(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    lang: Annotated[str, Form()] = "en",
    back: Annotated[str, Form()] = "",
) -> Response:
    """Remembered in a cookie and, for a logged-in person, in their preferences (every device)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    lang = lang if lang in LANGUAGES else "en"
    if principal is not None:
        await run_in_threadpool(_save_language, settings_of(request), principal.user_id, lang)
    target = back if back.startswith(root + "/") and "//" not in back else root + "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=YEAR, path="/", samesite="lax")
    return response
