"""Home dashboard: each panel shows only what the caller's permissions allow."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from sciti.access import Principal
from sciti.lake import open_lake
from sciti.risk.engine import hit_report
from sciti.risk.engine.report import RESULTS_TABLE, data_window
from sciti.settings import Settings
from sciti.web import dashboard
from sciti.web.figures_cache import cached, state_key
from sciti.web.lakeview import lake_view
from sciti.web.render import page, render, settings_of

router = APIRouter()
# The figures' cache key: the tables the panels read, and the acquired inspection results that the
# hit rates read besides (a new ingest of results changes the rates).
KEY_TABLES = (*dashboard.TABLES, RESULTS_TABLE)


def hits(settings: Settings, principal: Principal) -> dict[str, Any]:
    """Hit rates per rule and the random sample, of the caller's office (every office without
    one), over the last 90 days of the data as the other panels, not of the wall clock."""
    office = principal.office_code
    window = data_window(settings, office=office)
    since, until = window if window else (None, None)
    report = hit_report(settings, since=since, until=until, office=office)
    last = date.fromisoformat(report["until"]) - timedelta(days=1)  # until is exclusive
    return {**report, "first": report["since"], "last": last.isoformat()}


def figures(settings: Settings, principal: Principal) -> dict[str, Any]:
    """The panels the caller may see, computed in DuckDB (lake) and SQL (operational DB)."""
    out: dict[str, Any] = {}
    if principal.can("risk.report"):
        lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)

        def compute() -> dict[str, Any]:
            with lake_view(lake, principal, dashboard.TABLES, need_to_know=False) as view:
                return {
                    "declarations": dashboard.declarations_per_day(view),
                    "lanes": dashboard.lanes(view),
                    "seizures": dashboard.seizure_trend(view),
                    "hits": hits(settings, principal),
                }

        key = state_key(settings, lake, principal, KEY_TABLES)
        out.update(cached(key, compute))
    if principal.can("batches.read"):
        out["ingestion"] = dashboard.ingestion_health(settings)
    return out


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: Annotated[Principal, Depends(page())]) -> HTMLResponse:
    return await render(request, "home.html", principal, active="home")


@router.get("/home/panels", response_class=HTMLResponse)
async def panels(request: Request, principal: Annotated[Principal, Depends(page())]) -> HTMLResponse:
    """The panels, loaded by htmx after the page (the shell shows at once, then the figures)."""
    data = await run_in_threadpool(figures, settings_of(request), principal)
    return await render(request, "home_panels.html", principal, data=data)
