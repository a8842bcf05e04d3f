"""The home dashboard's figures: aggregations that DuckDB runs over the lake, never row loops.

Each function returns plain, JSON-ready data for one panel (and ``None`` when its table does not
exist yet: the page shows an empty state). Queries on record kinds go through the caller's row
filter from the policy point (an office sees its own), and only aggregates leave the lake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from sciti.ops import Batch, QuarantineRecord, session_scope
from sciti.settings import Settings
from sciti.web.lakeview import LakeView

DAYS = 30  # the window shown, ending at the newest day in the data (demo data may be old)
TREND_WEEKS = 26
FORECAST_WEEKS = 8
# The fewest weeks of seizures the forecast is fitted to: as many as it looks ahead. A line through
# fewer points than it extends is mostly their noise, and with so few the prediction interval's
# scatter (n - 2 degrees of freedom) is itself a guess.
MIN_FIT_WEEKS = FORECAST_WEEKS
Z95 = 1.959963984540054


TABLES = ("std.declarations", "risk.assessments", "std.seizures")


def declarations_per_day(view: LakeView) -> dict[str, Any] | None:
    """Declarations per acceptance day by mode of transport, and the busiest offices."""
    window = (
        f"""acceptance_date > (SELECT max(acceptance_date) FROM std.declarations) - INTERVAL {DAYS} DAY"""
    )
    by_mode = view.rows(
        "std.declarations",
        f"""SELECT CAST(acceptance_date AS VARCHAR) AS day, coalesce(mode_of_transport, '?') AS mode,
                   count(*) AS n
            FROM std.declarations WHERE {window} GROUP BY ALL ORDER BY day, mode""",  # noqa: S608
    )
    if by_mode is None:
        return None
    offices = view.rows(
        "std.declarations",
        f"""SELECT coalesce(office_code, '?') AS office, count(*) AS n FROM std.declarations
            WHERE {window} GROUP BY ALL ORDER BY n DESC LIMIT 10""",  # noqa: S608
    )
    days = sorted({r["day"] for r in by_mode})
    modes = sorted({r["mode"] for r in by_mode})
    cell = {(r["day"], r["mode"]): r["n"] for r in by_mode}
    series = [{"name": m, "data": [cell.get((d, m), 0) for d in days]} for m in modes]
    return {"days": days, "series": series, "offices": offices or [], "total": sum(r["n"] for r in by_mode)}


def lanes(view: LakeView) -> list[dict[str, Any]] | None:
    """Assessments per lane over the last ``DAYS`` days of assessments."""
    return view.rows(
        "risk.assessments",
        f"""SELECT lane, count(*) AS n FROM risk.assessments
            WHERE assessed_at > (SELECT max(assessed_at) FROM risk.assessments) - INTERVAL {DAYS} DAY
            GROUP BY ALL ORDER BY n DESC""",  # noqa: S608
    )


def linear_forecast(values: Sequence[float], horizon: int) -> dict[str, list[float]]:
    """Least-squares straight line through ``values`` and its 95 % prediction interval ahead.

    Deliberately simple and explainable: the trend is the fitted slope; the band widens with the
    scatter of the past weeks around the line and with the distance from them (the usual
    ordinary-least-squares prediction interval, normal approximation).
    """
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < 3:
        return {"mean": [], "low": [], "high": []}
    x = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    sigma = math.sqrt(float(resid @ resid) / (n - 2))
    sxx = float(((x - x.mean()) ** 2).sum())
    ahead = np.arange(n, n + horizon, dtype=float)
    mean = slope * ahead + intercept
    half = Z95 * sigma * np.sqrt(1 + 1 / n + (ahead - x.mean()) ** 2 / sxx)
    clip = np.maximum  # counts are never negative
    return {
        "mean": [round(float(v), 2) for v in clip(mean, 0)],
        "low": [round(float(v), 2) for v in clip(mean - half, 0)],
        "high": [round(float(v), 2) for v in clip(mean + half, 0)],
    }


def seizure_trend(view: LakeView) -> dict[str, Any] | None:
    """Seizures per week and, from ``MIN_FIT_WEEKS`` weeks on, a forecast of the next ``FORECAST_WEEKS``.

    The weeks run from the first week with a seizure (at most the last ``TREND_WEEKS``) to the
    newest: weeks before the first seizure are not zeros, they are before the data (or before an
    office or a feed began), and counting them as zeros fits a rise that is not there. A week
    without a seizure inside that span is a real zero.
    """
    rows = view.rows(
        "std.seizures",
        f"""WITH w AS (SELECT date_trunc('week', seized_at) AS week, count(DISTINCT seizure_id) AS n
                       FROM std.seizures WHERE seized_at IS NOT NULL GROUP BY ALL),
                 span AS (SELECT range AS week FROM range(
                       greatest((SELECT min(week) FROM w),
                                (SELECT max(week) FROM w) - INTERVAL {TREND_WEEKS - 1} WEEK),
                       (SELECT max(week) FROM w) + INTERVAL 1 DAY, INTERVAL 1 WEEK))
            SELECT CAST(CAST(span.week AS DATE) AS VARCHAR) AS week, coalesce(w.n, 0) AS n
            FROM span LEFT JOIN w ON w.week = span.week ORDER BY 1""",  # noqa: S608
    )
    if rows is None:
        return None
    weeks = [r["week"] for r in rows]
    counts = [int(r["n"]) for r in rows]
    fit = len(counts) >= MIN_FIT_WEEKS
    last = datetime.fromisoformat(weeks[-1]) if weeks else None
    ahead = (
        [(last + timedelta(weeks=i + 1)).date().isoformat() for i in range(FORECAST_WEEKS)]
        if last and fit
        else []
    )
    return {
        "weeks": weeks,
        "ahead": ahead,
        "counts": counts,
        "forecast": linear_forecast(counts if fit else [], FORECAST_WEEKS),
        "min_weeks": MIN_FIT_WEEKS,  # fewer weeks than this: no forecast, and the panel says why
    }


def ingestion_health(settings: Settings) -> dict[str, Any]:
    """Batches of the last day by status, their counts, and open quarantine (operational DB)."""
    since = datetime.now(UTC) - timedelta(days=1)
    with session_scope(settings.resolved_ops_db_url) as session:
        by_status = dict(
            session.execute(
                select(Batch.status, func.count()).where(Batch.started_at >= since).group_by(Batch.status)
            ).all()
        )
        received, stored, quarantined, already, replaced = session.execute(
            select(
                func.coalesce(func.sum(Batch.received), 0),
                func.coalesce(func.sum(Batch.stored), 0),
                func.coalesce(func.sum(Batch.quarantined), 0),
                func.coalesce(func.sum(Batch.already_stored), 0),
                func.coalesce(func.sum(Batch.replaced), 0),  # part of stored (decision 0112)
            ).where(Batch.started_at >= since)
        ).one()
        last = session.scalar(select(func.max(Batch.finished_at)))
        open_q = session.scalar(select(func.count()).where(QuarantineRecord.status == "open")) or 0
        running = session.scalar(select(func.count()).where(Batch.status == "running")) or 0
    return {
        "by_status": {str(k): int(v) for k, v in by_status.items()},
        "received": int(received),
        "stored": int(stored),
        "quarantined": int(quarantined),
        "already_stored": int(already),
        "replaced": int(replaced),
        "last_finished": last.isoformat(timespec="seconds") if last else None,
        "quarantine_open": int(open_q),
        "running": int(running),
    }


__all__ = ["TABLES", "declarations_per_day", "ingestion_health", "lanes", "linear_forecast", "seizure_trend"]
