"""FastAPI dependencies that authenticate the caller and check a permission.

They live here, not in ``sciti.api``, so every HTTP surface (API routers, the ingest router, the
web pages later) enforces access through one policy point. The app stores its ``Settings`` in
``app.state.settings``; the guard reads the operational database named there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer

from sciti.access.accounts import TOKEN_CACHE, Principal, resolve_token
from sciti.access.errors import AuthenticationRequired, PermissionDenied
from sciti.access.roles import check_permission_name
from sciti.access.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, UNSAFE_METHODS, resolve_session
from sciti.ops import session_scope
from sciti.settings import Settings

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
# OAuth2 "password" scheme in OpenAPI: the docs page gets an Authorize button that logs in.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


async def optional_principal(
    request: Request, token: str | None = Depends(bearer_scheme)
) -> Principal | None:
    """The caller from a bearer token or the browser session cookie (raising if invalid), else None.

    A bearer token wins when both are sent. With the cookie, a state-changing request must carry
    the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``).
    """
    session_id = request.cookies.get(SESSION_COOKIE)
    if not token and not session_id:
        return None
    url = settings_of(request).resolved_ops_db_url
    if token:  # a token resolved in the last few seconds needs no database (TOKEN_CACHE_SECONDS)
        principal = TOKEN_CACHE.get(url, token) or await run_in_threadpool(_from_token, url, token)
    else:
        csrf = request.headers.get(CSRF_HEADER)
        if csrf is None and request.method in UNSAFE_METHODS and _is_form(request):
            value = (await request.form()).get(CSRF_FIELD)
            csrf = value if isinstance(value, str) else None
        principal = await run_in_threadpool(_from_session, url, session_id or "", request.method, csrf)
    request.state.principal = principal  # the access log names who made the request
    return principal


def _is_form(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def _from_token(url: str, token: str) -> Principal:
    cached = TOKEN_CACHE.get(url, token)
    if cached is not None:
        return cached
    with session_scope(url) as session:
        principal = resolve_token(session, token)
    TOKEN_CACHE.put(url, token, principal)
    return principal


def _from_session(url: str, session_id: str, method: str, csrf: str | None) -> Principal:
    with session_scope(url) as session:
        return resolve_session(session, session_id, method=method, csrf=csrf)


async def current_principal(principal: Principal | None = Depends(optional_principal)) -> Principal:
    """The authenticated caller; 401 without a valid bearer token."""
    if principal is None:
        raise AuthenticationRequired()
    return principal


def demand(principal: Principal, permission: str) -> None:
    """403 unless ``principal`` holds ``permission``: for a permission that only some requests of
    an endpoint need (training a model is one; promoting it at once is another)."""
    if not principal.can(permission):
        raise PermissionDenied(
            f"your roles ({', '.join(principal.roles) or 'none'}) do not allow {permission!r}",
            remedy="ask an administrator for a role that grants it",
            details={"permission": permission},
        )


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller, who must hold ``permission`` (403 otherwise, 401 without a token).

    The permission name is checked now, when the route is declared, so a typo fails at start-up
    instead of silently denying (or allowing) everyone.
    """
    check_permission_name(permission)

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        demand(principal, permission)
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency
