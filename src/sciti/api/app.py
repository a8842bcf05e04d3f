"""The FastAPI application: ``create_app(settings)``.

Everything is under ``/api/v1`` except ``/healthz`` (liveness, public) and ``/metrics``
(Prometheus, needs a token with the ``metrics`` permission). Every other endpoint needs a bearer
token; ``PUBLIC_PATHS`` lists the only exceptions and tests/api/test_authentication.py keeps it so.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import RedirectResponse

from sciti import __version__
from sciti.access import current_principal
from sciti.api.errors import install_error_handlers
from sciti.api.middleware import RequestContextMiddleware
from sciti.api.routers import auth, batches, health, quarantine, sql
from sciti.settings import Settings, get_settings

if TYPE_CHECKING:
    from sciti.background import BackgroundJobs

log = logging.getLogger("sciti.api")
API_PREFIX = "/api/v1"
# Reachable without a bearer token. The token endpoint takes credentials; the OpenAPI document
# and its docs page describe the API and hold no data (the page logs in through the token endpoint).
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/",  # redirects to the web app, which asks for a login
        f"{API_PREFIX}/auth/token",
        f"{API_PREFIX}/auth/session",  # browser login: credentials, like the token endpoint
        f"{API_PREFIX}/auth/sso/login",  # single sign-on: redirect to the identity provider
        f"{API_PREFIX}/auth/sso/callback",  # ... and back, with the authorization code
        f"{API_PREFIX}/openapi.json",
        f"{API_PREFIX}/docs",
        f"{API_PREFIX}/docs/oauth2-redirect",
    }
)

# Routers of later capabilities, included when their module exists (one file each).
OPTIONAL_ROUTERS = (
    "ingest",
    "risk",
    "rules",
    "models",
    "users",
    "mfa",
    "audit",
    "secrets",
    "privacy",
    "unmask",
)


def _optional_module(name: str) -> Any | None:
    """A module other parts of SCITI provide, or None while it is not there."""
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except ModuleNotFoundError:
        return None
    return importlib.import_module(name)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    log.info("api started", extra={"version": __version__})
    try:
        yield
    finally:
        log.info("api stopped")


async def _to_web_app() -> RedirectResponse:
    return RedirectResponse("/ui/")


def create_app(settings: Settings | None = None, *, background: BackgroundJobs | None = None) -> FastAPI:
    """The API for one SCITI instance. ``background``: the server's background jobs process (it runs
    the acquisition transports; ``/healthz`` reports them), started and stopped by ``sciti serve``."""
    app = FastAPI(
        title="SCITI API",
        version=__version__,
        summary="Open data and risk platform for customs administrations.",
        description="Every endpoint except `/healthz` and `POST /api/v1/auth/token` needs a bearer token: "
        "log in with the token endpoint (or the Authorize button), or get one with `sciti user token NAME`. "
        'Every failure answers `{"error": {"code", "message", "remedy", "details", "request_id"}}`.',
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.state.background = background
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    api = APIRouter(prefix=API_PREFIX)
    optional = {name: _optional_module(f"sciti.api.routers.{name}") for name in OPTIONAL_ROUTERS}
    # FastAPI tries routers in order, scanning each one's routes: the real-time assessment that
    # clearance systems call before every release goes first (no other router's paths overlap /risk).
    order = [optional.pop("risk"), auth, batches, quarantine, sql, *optional.values()]
    for module in order:
        if module is None:
            continue
        if module.__name__.rsplit(".", 1)[-1] in OPTIONAL_ROUTERS:
            # Authentication enforced here as well, whatever the router itself declares.
            api.include_router(module.router, dependencies=[Depends(current_principal)])
        else:
            api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.add_api_route("/", _to_web_app, methods=["GET"], include_in_schema=False)
    web_router = getattr(_optional_module("sciti.web"), "router", None)
    if web_router is not None:  # server-rendered pages (a later issue) plug in here
        app.include_router(web_router)
    return app
