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
from sciti.access.sso import SsoSettings, safe_next
from sciti.errors import SCITIError
from sciti.ops import session_scope
from sciti.ops.web_tables import UserPreference
from sciti.settings import Settings
from sciti.web.i18n import LANG_COOKIE, LANGUAGES
from sciti.web.render import page, render, settings_of

router = APIRouter()
YEAR = 365 * 24 * 3600


def _client(request: Request) -> str:
    return request.client.host if request.client else "web"


def _sso_configured(request: Request) -> bool:
    parent_ref = getattr(request.app.state, "parent", None)
    parent = parent_ref() if parent_ref else None
    sso = getattr(parent.state, "sso_settings", None) if parent is not None else None
    try:
        sso = sso or SsoSettings()
    except Exception:  # a broken [sso] section hides the button; the API reports the error
        return False
    return bool(sso.configured)


def _next(value: str | None, root: str) -> str:
    nxt = safe_next(value) if value else ""
    return nxt if nxt.startswith(root + "/") else root + "/"


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return await render(request, "login.html", None, next=next or "", sso=_sso_configured(request))


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
    return response


@router.post("/login")
async def login_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    form = {"username": username.strip(), "password": password, "totp": totp.strip()}
    ask_totp = change = False
    try:
        started, lang = await run_in_threadpool(
            _start, settings_of(request), form, _client(request), request.cookies.get(SESSION_COOKIE)
        )
    except MfaRequired:
        error, ask_totp = "login.need_totp", True
    except PasswordChangeRequired:
        error, change = "login.must_change", True
    except SCITIError as exc:
        error = f"error.{exc.code}"
    else:
        return _logged_in(request, started, lang, _next(next, root))
    return await render(
        request,
        "login.html",
        None,
        status_code=401 if not change else 200,
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
            second_factor=form.get("totp") or None,
            mfa_key=load_instance_key(settings.home),
        )
        audit(session, actor=user.username, action="password.change", target=f"user:{user.username}")
    return _start(settings, {**form, "password": form["new_password"], "totp": ""}, client, None)


@router.post("/password")
async def password_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    totp: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """First login with a one-time password: set your own, then you are logged in."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    form = {"username": username.strip(), "password": password, "new_password": new_password, "totp": totp}
    try:
        started, lang = await run_in_threadpool(_change, settings_of(request), form, _client(request))
    except MfaRequired:
        # The new password is set; an account with MFA logs in with it and a code.
        return await render(request, "login.html", None, username=form["username"], ask_totp=True, next=next)
    except SCITIError as exc:
        return await render(
            request,
            "login.html",
            None,
            status_code=422,
            error=f"error.{exc.code}",
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


@router.post("/logout")
async def logout(request: Request, principal: Annotated[Principal, Depends(page())]) -> Response:
    """A POST with the CSRF token (the guard checks it): a link elsewhere cannot log you out."""
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        await run_in_threadpool(_end, settings_of(request), sid, principal.username, _client(request))
    root = str(request.scope.get("root_path", "")).rstrip("/")
    response = RedirectResponse(f"{root}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
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
