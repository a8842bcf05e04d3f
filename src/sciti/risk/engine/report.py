"""Hit-rate report: per rule and per model over time, the compliance sample apart, weak rules flagged.

Hits (how often a rule fired, how many records a model sent to an officer) come from the lake's
``risk.assessments``; outcomes from the inspection results linked to assessments (ops). A rule is
flagged ``never_hit`` when it is active and fired on nothing in the window, and
``only_false_positives`` when at least ``min_inspected`` of its hits were inspected and none found
fraud. The random sample's hit rate is the unbiased baseline to read the others against.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_TABLE
from sciti.risk.engine.errors import EngineError
from sciti.settings import Settings

PERIODS = ("day", "week", "month")


def _period(d: date, period: str) -> str:
    if period == "day":
        return d.isoformat()
    if period == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return d.strftime("%Y-%m")


def _rate(frauds: int, inspected: int) -> float | None:
    return round(frauds / inspected, 4) if inspected else None


def hit_report(
    settings: Settings,
    *,
    since: date | None = None,
    until: date | None = None,
    period: str = "month",
    kind: str | None = None,
    min_inspected: int = 5,
) -> dict[str, Any]:
    """The report as plain data (the API answers it as JSON; the CLI prints it as tables)."""
    if period not in PERIODS:
        raise EngineError(f"unknown period {period!r}", remedy=f"use one of {', '.join(PERIODS)}")
    until = until or datetime.now(UTC).date() + timedelta(days=1)
    since = since or until - timedelta(days=90)
    hits = _lake_hits(settings, since, until, kind)
    rule_rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"hits": 0, "inspected": 0, "frauds": 0}
    )
    model_rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"assessed": 0, "flagged": 0, "inspected": 0, "frauds": 0}
    )
    for h in hits["rules"]:
        rule_rows[(h["rule_id"], _period(h["day"], period))]["hits"] += h["n"]
    for h in hits["models"]:
        row = model_rows[(h["model_version"], _period(h["day"], period))]
        row["assessed"] += h["n"]
        row["flagged"] += h["flagged"]
    sample = {"inspected": 0, "frauds": 0}
    with session_scope(settings.resolved_ops_db_url) as session:
        q = select(RiskInspection).where(
            RiskInspection.inspected_on >= since, RiskInspection.inspected_on < until
        )
        if kind:
            q = q.where(RiskInspection.kind == kind)
        inspections = list(session.scalars(q))
    for ins in inspections:
        p = _period(ins.inspected_on, period)
        if ins.selection_reason == "random":
            sample["inspected"] += 1
            sample["frauds"] += int(ins.fraud)
            continue
        for rid in ins.rule_ids or []:
            rule_rows[(rid, p)]["inspected"] += 1
            rule_rows[(rid, p)]["frauds"] += int(ins.fraud)
        if ins.model_version:
            model_rows[(ins.model_version, p)]["inspected"] += 1
            model_rows[(ins.model_version, p)]["frauds"] += int(ins.fraud)

    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"hits": 0, "inspected": 0, "frauds": 0})
    for (rid, _), r in rule_rows.items():
        for k in ("hits", "inspected", "frauds"):
            totals[rid][k] += r[k]
    for rid in _active_rule_ids(settings, kind):
        totals.setdefault(rid, {"hits": 0, "inspected": 0, "frauds": 0})
    rules_summary = []
    for rid, t in sorted(totals.items()):
        flag = None
        if t["hits"] == 0:
            flag = "never_hit"
        elif t["inspected"] >= min_inspected and t["frauds"] == 0:
            flag = "only_false_positives"
        rules_summary.append(
            {"rule_id": rid, **t, "hit_rate": _rate(t["frauds"], t["inspected"]), "flag": flag}
        )
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "period": period,
        "kind": kind,
        "rules": rules_summary,
        "rules_over_time": [
            {"rule_id": rid, "period": p, **r, "hit_rate": _rate(r["frauds"], r["inspected"])}
            for (rid, p), r in sorted(rule_rows.items())
        ],
        "models_over_time": [
            {"model_version": mv, "period": p, **r, "hit_rate": _rate(r["frauds"], r["inspected"])}
            for (mv, p), r in sorted(model_rows.items())
        ],
        "compliance_sample": {**sample, "hit_rate": _rate(sample["frauds"], sample["inspected"])},
    }


def _lake_hits(
    settings: Settings, since: date, until: date, kind: str | None
) -> dict[str, list[dict[str, Any]]]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists(ASSESSMENTS_TABLE):
        return {"rules": [], "models": []}
    start, end = since.isoformat(), until.isoformat()
    where = f"assessed_at >= TIMESTAMPTZ '{start}' AND assessed_at < TIMESTAMPTZ '{end}'"
    if kind:
        where += f" AND kind = '{kind.replace(chr(39), '')}'"
    rules = query(
        lake,
        f"""SELECT rule_id, day, count(*) AS n FROM (
              SELECT unnest(rule_ids) AS rule_id, CAST(assessed_at AS DATE) AS day
              FROM risk.assessments WHERE {where}) GROUP BY ALL""",  # noqa: S608 (values are ours)
    ).to_pylist()
    models = query(
        lake,
        f"""SELECT model_version, CAST(assessed_at AS DATE) AS day, count(*) AS n,
                   count(*) FILTER (WHERE lane <> 'green') AS flagged
            FROM risk.assessments WHERE {where} AND model_version IS NOT NULL GROUP BY ALL""",  # noqa: S608
    ).to_pylist()
    return {"rules": rules, "models": models}


def _active_rule_ids(settings: Settings, kind: str | None) -> list[str]:
    from sciti.risk.engine.subjects import SUBJECTS

    out: list[str] = []
    at = datetime.now(UTC)
    for k in [kind] if kind else list(SUBJECTS):
        try:
            out.extend(r.rule_id for r in parts.active_rules(settings, k, at))
        except Exception:  # noqa: S112 (a kind without rules support yet has no active rules)
            continue
    return out


__all__ = ["PERIODS", "hit_report"]
