"""The web application: a FastAPI sub-application mounted at ``/ui`` of the API's app.

One sub-application is built per parent app (tests make many apps with different settings) and
shares the parent's settings. Its error handlers answer in HTML: no session -> the login page,
no permission -> a 403 page in the user's language, a form or address it cannot take (a
NUL character included) -> a 422 page naming the fields, anything else -> an error page with the
request id. The API keeps its JSON envelope.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sciti.api.errors import NUL_SCOPE_KEY
from sciti.errors import SCITIError
from sciti.logs import request_id_var
from sciti.settings import Settings
from sciti.web.errors import say
from sciti.web.i18n import Translator
from sciti.web.render import language, render

log = logging.getLogger("sciti.web")
STATIC = Path(__file__).resolve().parent / "static"
WEB_ROOT = "/ui"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _error_page(
    request: Request, status: int, message: str, remedy: str | None, detail: str | None = None
) -> Response:
    """The error page in the reader's language; ``detail``: the server's own English words, shown
    beside a message that had to be said in other words (see sciti.web.errors.say)."""
    if request.headers.get("hx-request"):  # a fragment: show the message where the fragment goes
        return HTMLResponse(
            f'<div class="notice error" role="alert">{escape(message)}</div>', status_code=status
        )
    return await render(
        request,
        "error.html",
        getattr(request.state, "principal", None),
        status_code=status,
        status=status,
        message=message,
        remedy=remedy,
        detail=detail,
        request_id=request_id_var.get(),
    )


async def _scitierror(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SCITIError)
    if exc.http_status == 401:
        target = f"{_root(request)}/login?next={quote(request.url.path, safe='/')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        response = RedirectResponse(target, status_code=303)
        return response
    if exc.http_status >= 500:
        log.error("page failed: %s", exc.message, extra={"code": exc.code})
    message, remedy, detail = say(Translator(language(request)), exc)
    return await _error_page(request, exc.http_status, message, remedy, detail)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    t = Translator(language(request))
    if exc.status_code == 404:
        return await _error_page(request, 404, t("error.no_page"), t("error.no_page_remedy"))
    return await _error_page(request, exc.status_code, t("error.http_status", status=exc.status_code), None)


def _problem(t: Translator, error: dict[str, Any]) -> str:
    """One validation problem in the reader's words: by its type (a stable code), else in general."""
    key = f"invalid.{error.get('type')}"
    return t(key) if t.has(key) else t("invalid.other")


def _param(t: Translator, name: str) -> str:
    """A form or address field by its label; one the catalogues do not know, by its name."""
    return t(f"param.{name}") if t.has(f"param.{name}") else name


async def _invalid(request: Request, exc: Exception) -> Response:
    """A form or address the page cannot take: which fields, never what was typed (a password)."""
    assert isinstance(exc, RequestValidationError)
    t = Translator(language(request))
    names = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "?" for e in exc.errors()})
    problems = sorted({_problem(t, e) for e in exc.errors()})
    fields = t("shell.list_separator").join(_param(t, n) for n in names)
    message = t("error.invalid_fields", fields=fields, problems=t("shell.list_separator").join(problems))
    return await _error_page(request, 422, message, t("error.invalid_remedy"))


def _refuse_nul(request: Request) -> None:
    """Every page: text PostgreSQL cannot hold, found by the API's RejectNul, stops here."""
    errors = request.scope.get(NUL_SCOPE_KEY)
    if errors:
        raise RequestValidationError(errors)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled page error: %s", type(exc).__name__, exc_info=exc)
    return await _error_page(request, 500, Translator(language(request))("error.unexpected"), None)


def create_web_app(settings: Settings) -> FastAPI:
    from sciti.web.views import ROUTERS  # the views import render; keep module import light

    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(_refuse_nul)])
    web.state.settings = settings
    web.add_exception_handler(SCITIError, _scitierror)
    web.add_exception_handler(StarletteHTTPException, _http)
    web.add_exception_handler(RequestValidationError, _invalid)
    web.add_exception_handler(Exception, _unhandled)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        web.include_router(router)
    return web


class WebDispatcher:
    """The ASGI app mounted at /ui: finds (or builds) the web app of the parent app serving it."""

    def __init__(self) -> None:
        self._apps: weakref.WeakKeyDictionary[Any, FastAPI] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parent = scope["app"]
        web = self._apps.get(parent)
        if web is None:
            web = self._apps[parent] = create_web_app(parent.state.settings)
            web.state.parent = weakref.ref(parent)  # for settings the API keeps (single sign-on)
        await web(scope, receive, send)


__all__ = ["WEB_ROOT", "WebDispatcher", "create_web_app"]
