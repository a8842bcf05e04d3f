"""Rendering pages: the Jinja2 environment, the page guard, navigation by permission.

Every page depends on :func:`page` (or :func:`page_any`): the caller comes from the browser
session cookie through ``sciti.access.optional_principal`` -- the same policy point as the API --
and must hold the page's permission. Without a session the browser goes to the login page;
without the permission it gets a 403 page (the handlers are in :mod:`sciti.web.app`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sciti import __version__
from sciti.access import SESSION_COOKIE, Principal, csrf_token, optional_principal
from sciti.access.roles import check_permission_name
from sciti.ops import session_scope
from sciti.settings import Settings
from sciti.web.dryrun_words import note_words, notes_shown
from sciti.web.errors import LoginNeeded, Names, PageForbidden
from sciti.web.i18n import DEFAULT, LANG_COOKIE, LANGUAGES, Translator, catalogue, keep, pick
from sciti.web.words import factor_sentence, factor_words

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
# keep(value): a stored value inside a message, marked as data; factor_words: a model factor in words.
TEMPLATES.env.globals.update(keep=keep, factor_words=factor_words, factor_sentence=factor_sentence)
# notes_shown / note_words: a rule dry-run's notes in the reader's language (page and script).
TEMPLATES.env.globals.update(notes_shown=notes_shown, note_words=note_words)


@dataclass(frozen=True)
class NavItem:
    key: str  # message key and the page's id
    path: str  # below the web root
    permissions: tuple[str, ...]  # any one of them shows the item


NAV = (
    NavItem("home", "/", ()),
    NavItem("risk", "/risk/queue", ("risk.queue",)),
    NavItem("rules", "/rules", ("rules.read",)),
    NavItem("models", "/models", ("models.read",)),
    NavItem("sources", "/sources", ("batches.read",)),
    NavItem("quarantine", "/quarantine", ("quarantine.read",)),
    NavItem("sql", "/sql", ("sql.query",)),
    NavItem("admin", "/admin", ("users.manage", "audit.read", "secrets.list")),
)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def language(request: Request) -> str:
    return pick(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def page_any(*permissions: str) -> Callable[..., Any]:
    """Dependency: the logged-in caller, holding at least one of ``permissions`` (none: any user)."""
    for p in permissions:
        check_permission_name(p)

    async def dependency(principal: Principal | None = Depends(optional_principal)) -> Principal:
        if principal is None:
            raise LoginNeeded()
        if permissions and not any(principal.can(p) for p in permissions):
            raise PageForbidden(
                "error.page_forbidden",
                "error.page_forbidden_remedy",
                roles=Names("role", principal.roles),
                details={"permission": " or ".join(permissions)},
            )
        return principal

    return dependency


def page(permission: str | None = None) -> Callable[..., Any]:
    return page_any(*(() if permission is None else (permission,)))


@cache
def code_words(lang: str) -> dict[str, str]:
    """What each error code means in ``lang`` (``code.<code>``), for the API's answers the page's
    script shows (an API error's words are English); none for English pages."""
    if lang == DEFAULT:
        return {}
    return {k.removeprefix("code."): v for k, v in catalogue(lang).items() if k.startswith("code.")}


def _csrf(settings: Settings, session_id: str) -> str:
    with session_scope(settings.resolved_ops_db_url) as session:
        return csrf_token(session, session_id)


async def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    active: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A full page (or, for htmx requests of a fragment template, just the fragment)."""
    lang = language(request)
    sid = request.cookies.get(SESSION_COOKIE)
    csrf = ""
    if principal is not None and principal.session_id is not None and sid:
        csrf = await run_in_threadpool(_csrf, settings_of(request), sid)
    nav = [
        n
        for n in NAV
        if principal is not None and (not n.permissions or any(map(principal.can, n.permissions)))
    ]
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "t": Translator(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "user": principal,
            "csrf": csrf,
            "nav": nav,
            "active": active,
            "version": __version__,
            "root": str(request.scope.get("root_path", "")).rstrip("/"),
            "code_words": code_words(lang),
            **context,
        },
        status_code=status_code,
    )


__all__ = [
    "NAV",
    "TEMPLATES",
    "NavItem",
    "code_words",
    "language",
    "page",
    "page_any",
    "render",
    "settings_of",
]
