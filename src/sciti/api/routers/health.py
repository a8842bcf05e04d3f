"""Liveness (``/healthz``, no authentication, nothing sensitive) and Prometheus ``/metrics``."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from sciti import __version__
from sciti.access import Principal, require
from sciti.api import metrics
from sciti.ops import get_engine

router = APIRouter(tags=["health"])
log = logging.getLogger("sciti.api")


@router.get("/healthz", summary="Liveness and readiness (no authentication)")
def healthz(request: Request) -> JSONResponse:
    """``ok`` with the version when the operational database answers; 503 otherwise."""
    background = request.app.state.background  # runs the transports (sciti serve)
    checks = {"ops_db": "ok", "transports": background.transports_status if background else "not_started"}
    try:
        with get_engine(request.app.state.settings.resolved_ops_db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the reason goes to the log, never to an unauthenticated caller
        log.warning("health check: operational database unavailable: %s", type(exc).__name__)
        checks["ops_db"] = "unavailable"
    ok = checks["ops_db"] == "ok"
    body = {"status": "ok" if ok else "unavailable", "version": __version__, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs the `metrics` permission)",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
)
def prometheus_metrics(_: Annotated[Principal, Depends(require("metrics"))]) -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
