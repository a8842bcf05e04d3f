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


# Check values that mean a part of the service is impaired while the API still answers.
DEGRADED = {"transports": ("degraded", "failed"), "risk_models": ("degraded",)}


@router.get("/healthz", summary="Liveness and readiness (no authentication)")
def healthz(request: Request) -> JSONResponse:
    """``ok`` with the version when the operational database answers and nothing is impaired;
    ``degraded`` (still 200) when a check is; ``unavailable`` (503) without the database.

    Which check is impaired is said, never which connector or model kind, nor why: this answers
    without authentication (decisions 0087, 0092). ``/metrics`` and the log say the rest.
    """
    background = request.app.state.background  # runs the transports (sciti serve)
    checks = {
        "ops_db": "ok",
        "transports": background.transports_status if background else "not_started",
        "risk_models": _risk_models(request),
    }
    try:
        with get_engine(request.app.state.settings.resolved_ops_db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the reason goes to the log, never to an unauthenticated caller
        log.warning("health check: operational database unavailable: %s", type(exc).__name__)
        checks["ops_db"] = "unavailable"
    if checks["ops_db"] != "ok":
        status, code = "unavailable", 503
    elif any(checks[name] in values for name, values in DEGRADED.items()):
        # 200 all the same: the API still serves risk answers (with rules only if need be) and
        # queries, and a load balancer must not take it out of service for this.
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JSONResponse({"status": status, "version": __version__, "checks": checks}, status_code=code)


def _risk_models(request: Request) -> str:
    """``degraded`` while a kind's champion model failed to load (the engine's model alert, also
    ``sciti_risk_model_unavailable`` on /metrics); ``not_started`` before the first assessment."""
    service = getattr(request.app.state, "risk_service", None)
    if service is None:  # the engine loads on first use: a health check does not start it
        return "not_started"
    parts = service.assessor.parts.values()
    return "degraded" if any(p.model_error for p in parts) else "ok"


@router.get(
    "/metrics",
    summary="Prometheus metrics (needs the `metrics` permission)",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
)
def prometheus_metrics(_: Annotated[Principal, Depends(require("metrics"))]) -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
