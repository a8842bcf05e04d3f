"""FastAPI dependencies that authenticate the caller and check a permission.

They live here, not in ``sciti.api``, so every HTTP surface (API routers, the ingest router, the
web pages later) enforces access through one policy point. The app stores its ``Settings`` in
``app.state.settings``; the guard reads the operational database named there.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sciti.access.accounts import Principal, resolve_token
from sciti.access.errors import AuthenticationRequired, PermissionDenied
from sciti.access.roles import check_permission_name
from sciti.ops import session_scope
from sciti.settings import Settings

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
# OAuth2 "password" scheme in OpenAPI: the docs page gets an Authorize button that logs in.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def optional_principal(request: Request, token: str | None = Depends(bearer_scheme)) -> Principal | None:
    """The caller if a bearer token was sent (raising if it is invalid), else None."""
    if not token:
        return None
    with session_scope(settings_of(request).resolved_ops_db_url) as session:
        principal = resolve_token(session, token)
    request.state.principal = principal  # the access log names who made the request
    return principal


def current_principal(principal: Principal | None = Depends(optional_principal)) -> Principal:
    """The authenticated caller; 401 without a valid bearer token."""
    if principal is None:
        raise AuthenticationRequired()
    return principal


def require(permission: str) -> Callable[..., Principal]:
    """Dependency: the caller, who must hold ``permission`` (403 otherwise, 401 without a token).

    The permission name is checked now, when the route is declared, so a typo fails at start-up
    instead of silently denying (or allowing) everyone.
    """
    check_permission_name(permission)

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(
                f"your roles ({', '.join(principal.roles) or 'none'}) do not allow {permission!r}",
                remedy="ask an administrator for a role that grants it",
                details={"permission": permission},
            )
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency
