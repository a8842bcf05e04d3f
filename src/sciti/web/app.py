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
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from sciti.api.errors import NUL_SCOPE_KEY
from sciti.errors import SCITIError
from sciti.logs import request_id_var
from sciti.settings import Settings
from sciti.web.render import render

log = logging.getLogger("sciti.web")
STATIC = Path(__file__).resolve().parent / "static"
WEB_ROOT = "/ui"


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _error_page(request: Request, status: int, message: str, remedy: str | None) -> Response:
    if request.headers.get("hx-request"):  # a fragment: show the message where the fragment goes
        return HTMLResponse(
            f'<div class="notice error" role="alert">{_escape(message)}</div>', status_code=status
        )
    return await render(
        request,
        "error.html",
        getattr(request.state, "principal", None),
        status_code=status,
        status=status,
        message=message,
        remedy=remedy,
        request_id=request_id_var.get(),
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    return await _error_page(request, exc.http_status, exc.message, exc.remedy)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    return await _error_page(request, exc.status_code, message, None)


async def _invalid(request: Request, exc: Exception) -> Response:
    """A form or address the page cannot take: which fields, never what was typed (a password)."""
    assert isinstance(exc, RequestValidationError)
    names = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "?" for e in exc.errors()})
    problems = sorted({str(e.get("msg", "invalid")) for e in exc.errors()})
    message = f"not valid: {', '.join(names)} ({'; '.join(problems)})"
    return await _error_page(request, 422, message, "go back, correct these fields and send again")


def _refuse_nul(request: Request) -> None:
    """Every page: text PostgreSQL cannot hold, found by the API's RejectNul, stops here."""
    errors = request.scope.get(NUL_SCOPE_KEY)
    if errors:
        raise RequestValidationError(errors)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled page error: %s", type(exc).__name__, exc_info=exc)
    return await _error_page(request, 500, "an unexpected error occurred on the server", None)


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
