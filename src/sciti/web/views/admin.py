"""Administration: users and their state, roles, secrets' metadata (never values), the audit log.

Changes (disable, unlock, reset MFA, verify the audit chain) are calls to the JSON API with the
session's CSRF token: one implementation, one authorisation, one audit entry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sciti.access import Principal, account_state, list_entries, list_users, mfa_enabled
from sciti.access.roles import all_roles, permissions_of
from sciti.access.secrets import SecretsService
from sciti.ops import session_scope
from sciti.settings import Settings
from sciti.web.render import page, page_any, render, settings_of

router = APIRouter()
AUDIT_PAGE = 100


@router.get("/admin")
async def admin(
    request: Request,
    principal: Annotated[Principal, Depends(page_any("users.manage", "audit.read", "secrets.list"))],
) -> Response:
    """The first administration page the caller may see."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    for permission, path in (("users.manage", "users"), ("audit.read", "audit"), ("secrets.list", "secrets")):
        if principal.can(permission):
            return RedirectResponse(f"{root}/admin/{path}", status_code=303)
    raise AssertionError("page_any let through a caller without any admin permission")


def _users(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings.resolved_ops_db_url) as session:
        return [
            {
                "username": u.username,
                "display_name": u.display_name,
                "roles": list(u.roles or []),
                "office_code": u.office_code,
                "state": account_state(session, u),
                "mfa": mfa_enabled(session, u.id),
                "last_login_at": u.last_login_at,
                "service": u.password_hash is None,
            }
            for u in list_users(session)
        ]


@router.get("/admin/users", response_class=HTMLResponse)
async def users(
    request: Request, principal: Annotated[Principal, Depends(page("users.manage"))]
) -> HTMLResponse:
    items = await run_in_threadpool(_users, settings_of(request))
    roles = [{"name": r, "permissions": sorted(permissions_of([r]))} for r in sorted(all_roles())]
    return await render(request, "admin_users.html", principal, active="admin", users=items, roles=roles)


def _audit(settings: Settings, actor: str, action: str, offset: int) -> list[Any]:
    with session_scope(settings.resolved_ops_db_url) as session:
        return list_entries(
            session, actor=actor or None, action=action or None, limit=AUDIT_PAGE, offset=offset
        )


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    principal: Annotated[Principal, Depends(page("audit.read"))],
    actor: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    entries = await run_in_threadpool(_audit, settings_of(request), actor, action, offset)
    return await render(
        request,
        "admin_audit.html",
        principal,
        active="admin",
        entries=entries,
        actor=actor,
        action=action,
        offset=offset,
        page_size=AUDIT_PAGE,
    )


@router.get("/admin/secrets", response_class=HTMLResponse)
async def secrets(
    request: Request, principal: Annotated[Principal, Depends(page("secrets.list"))]
) -> HTMLResponse:
    settings = settings_of(request)
    metas = await run_in_threadpool(lambda: SecretsService(settings).list())
    return await render(request, "admin_secrets.html", principal, active="admin", secrets=metas)
