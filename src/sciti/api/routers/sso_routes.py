"""Single sign-on endpoints (public): start at the identity provider, come back with a code.

Included by the auth router (not an optional router: these two paths must work without a token).
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import SecretStr

from sciti.access import SESSION_COOKIE, SsoError, load_instance_key, login_session
from sciti.access.audit import audit
from sciti.access.sso import (
    LOGOUT_COOKIE,
    REQUEST_MINUTES,
    STATE_COOKIE,
    SsoSettings,
    finish_login,
    seal_logout_hint,
    start_login,
)
from sciti.api.deps import SettingsDep
from sciti.ops import session_scope
from sciti.settings import Settings

router = APIRouter(tags=["auth"])
log = logging.getLogger("sciti.access")


def sso_settings(request: Request) -> SsoSettings:
    """The app's SSO settings (``app.state.sso_settings``), else read from sciti.toml / environment."""
    configured = getattr(request.app.state, "sso_settings", None)
    if configured is None:
        configured = request.app.state.sso_settings = SsoSettings()
    return configured


def with_client_secret(settings: Settings, sso: SsoSettings) -> SsoSettings:
    """The settings with the client secret: given directly, or read from the secrets store by name."""
    if sso.client_secret is not None:
        return sso
    from sciti.access.secrets import SecretNotFound, resolve

    try:
        value = resolve(settings, sso.client_secret_name, actor="sso")
    except SecretNotFound as exc:
        raise SsoError(
            f"the SSO client secret {sso.client_secret_name!r} is not in the secrets store",
            remedy=exc.remedy or f"store it with `sciti secrets put {sso.client_secret_name}`",
        ) from None
    return sso.model_copy(update={"client_secret": SecretStr(value)})


def _redirect_uri(request: Request, sso: SsoSettings) -> str:
    return sso.redirect_uri or str(request.url_for("sso_callback"))


@router.get(
    "/auth/sso/login",
    summary="Single sign-on: redirect to the organisation's identity provider (no token needed)",
    response_class=RedirectResponse,
    status_code=302,
)
async def sso_login(
    request: Request,
    settings: SettingsDep,
    next: Annotated[str | None, Query(description="Path on this site to return to after login.")] = None,
) -> RedirectResponse:
    sso = sso_settings(request)
    redirect_uri = _redirect_uri(request, sso)

    def begin():
        with session_scope(settings.resolved_ops_db_url) as session:
            return start_login(session, sso, redirect_uri, next_url=next)

    started = await run_in_threadpool(begin)
    response = RedirectResponse(started.url, status_code=302)
    # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=REQUEST_MINUTES * 60,
        path="/api/v1/auth/sso",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _finish(
    settings: Settings,
    sso: SsoSettings,
    redirect_uri: str,
    state: str,
    code: str,
    browser: str | None,
    client: str,
    replaces: str | None,
):
    sso = with_client_secret(settings, sso)
    with session_scope(settings.resolved_ops_db_url) as session:
        result = finish_login(
            session, sso, redirect_uri, state=state, code=code, browser_state=browser, client=client
        )
        started = login_session(
            session, result.user, settings.token_ttl_minutes, method="sso", client=client, replaces=replaces
        )
    hint = seal_logout_hint(load_instance_key(settings.home), started.session_id, result.id_token)
    return result.next_url, started, hint


def _audit_refusal(settings: Settings, client: str, reason: str) -> None:
    """A refused sign-on is a failed login: recorded in its own transaction (the login's rolled back)."""
    with session_scope(settings.resolved_ops_db_url) as session:
        audit(
            session,
            actor="sso",
            action="login.failed",
            source=client,
            outcome="refused",
            details={"method": "sso", "reason": reason[:300]},
        )


@router.get(
    "/auth/sso/callback",
    summary="Single sign-on: the identity provider's answer; starts a browser session (no token needed)",
    response_class=HTMLResponse,
    name="sso_callback",
)
async def sso_callback(
    request: Request,
    settings: SettingsDep,
    state: Annotated[str | None, Query()] = None,
    code: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
    error_description: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """Verifies state (and that this browser started the login), exchanges the code with its PKCE
    verifier, checks the id_token (signature, issuer, audience, expiry, nonce), provisions the
    account with its mapped roles and sets the session cookie."""
    if error:
        raise SsoError(
            f"the identity provider refused the sign-on: {error} {error_description or ''}".strip()
        )
    if not state or not code:
        raise SsoError("the sign-on answer lacks 'state' or 'code'")
    sso = sso_settings(request)
    client = request.client.host if request.client else "unknown"
    try:
        next_url, started, hint = await run_in_threadpool(
            _finish,
            settings,
            sso,
            _redirect_uri(request, sso),
            state,
            code,
            request.cookies.get(STATE_COOKIE),
            client,
            request.cookies.get(SESSION_COOKIE),
        )
    except SsoError as exc:
        log.warning("sso login refused", extra={"reason": exc.message[:200]})
        await run_in_threadpool(_audit_refusal, settings, client, exc.message)
        raise
    log.info("login", extra={"user": started.username, "method": "sso"})
    # A page rather than a 303: a SameSite=Strict cookie set at the end of a cross-site redirect
    # chain is not sent on the redirect's next hop, but is on a navigation the page starts.
    target = html.escape(next_url, quote=True)
    response = HTMLResponse(
        f'<!doctype html><meta http-equiv="refresh" content="0;url={target}">'
        f'<p>Signed in as {html.escape(started.username)}. <a href="{target}">Continue</a></p>'
    )
    response.set_cookie(
        SESSION_COOKIE,
        started.session_id,
        max_age=settings.token_ttl_minutes * 60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    # The id_token, sealed and bound to this session, for the id_token_hint of single logout.
    response.set_cookie(
        LOGOUT_COOKIE,
        hint,
        max_age=settings.token_ttl_minutes * 60,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(STATE_COOKIE, path="/api/v1/auth/sso")
    return response
