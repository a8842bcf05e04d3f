"""Hit-rate report: per rule and per model over time, the compliance sample apart, weak rules flagged.

Hits (how often a rule fired, how many records a model sent to an officer) come from the lake's
``risk.assessments``, a record assessed more than once counted by its latest assessment. Outcomes
come from the inspection results posted for assessments (ops) and from those acquired with the data
(``std.inspection_results``), linked through their declaration to its latest assessment. A rule is
flagged ``never_hit`` when it is active and fired on nothing in the window, and
``only_false_positives`` when at least ``min_inspected`` of its hits were inspected and none found
fraud. The random sample's hit rate is the unbiased baseline to read the others against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_TABLE
from sciti.risk.engine.errors import EngineError
from sciti.risk.engine.feedback import FEEDBACK_SOURCE
from sciti.settings import Settings

PERIODS = ("day", "week", "month")
RESULTS_TABLE = get_kind("inspection_result").ident  # std.inspection_results


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
        posted = [
            Outcome(i.inspected_on, bool(i.fraud), i.selection_reason, i.rule_ids or [], i.model_version)
            for i in session.scalars(q)
        ]
    acquired = _acquired_outcomes(settings, since, until, kind)
    for ins in posted + acquired:
        p = _period(ins.inspected_on, period)
        if ins.selection_reason == "random":
            sample["inspected"] += 1
            sample["frauds"] += int(ins.fraud)
            continue
        for rid in ins.rule_ids:
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
        # Where the outcomes came from: posted to SCITI, or acquired with the data and linked.
        "inspections": {"posted": len(posted), "acquired": len(acquired)},
    }


@dataclass(frozen=True)
class Outcome:
    """One inspection result with what the assessment it is linked to said."""

    inspected_on: date
    fraud: bool
    selection_reason: str | None
    rule_ids: list[str]
    model_version: str | None


def _acquired_outcomes(settings: Settings, since: date, until: date, kind: str | None) -> list[Outcome]:
    """Inspection results that came with the data (a clearance system's connector, not
    ``POST /inspections``), each linked to its declaration's latest assessment.

    They name the declaration, not an assessment, so the link goes through ``std.declarations``.
    The latest assessment is taken even when it was made after the inspection (history scored
    later, as a backtest): it is what the rules and model in force say about that record now.
    """
    if kind not in (None, "declaration"):
        return []
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not all(lake.exists(t) for t in (ASSESSMENTS_TABLE, RESULTS_TABLE, "std.declarations")):
        return []
    rows = query(
        lake,
        f"""WITH a AS (
              SELECT record_id, assessed_at, assessment_id, rule_ids, model_version
              FROM risk.assessments WHERE kind = 'declaration'
              QUALIFY row_number() OVER (
                  PARTITION BY record_id ORDER BY assessed_at DESC, assessment_id DESC) = 1)
            SELECT i.inspected_on, coalesce(i.fraud, false) AS fraud, i.selection_reason,
                   a.rule_ids, a.model_version
            FROM {RESULTS_TABLE} i
            JOIN std.declarations d ON d.declaration_id = i.declaration_id
            JOIN a ON a.record_id = d.record_id
            WHERE i.source <> '{FEEDBACK_SOURCE}'
              AND i.inspected_on >= DATE '{since.isoformat()}' AND i.inspected_on < DATE '{until.isoformat()}'
            QUALIFY row_number() OVER (
                PARTITION BY i.record_id ORDER BY a.assessed_at DESC, a.assessment_id DESC) = 1""",  # noqa: S608 (values are ours)
    ).to_pylist()
    return [
        Outcome(
            r["inspected_on"],
            bool(r["fraud"]),
            r["selection_reason"],
            r["rule_ids"] or [],
            r["model_version"],
        )
        for r in rows
    ]


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
    # A record scored again (batch re-run, amended declaration) counts once: its latest assessment
    # in the window, the one its queue item now follows; the older ones were superseded.
    latest = f"""(SELECT * FROM risk.assessments WHERE {where}
        QUALIFY row_number() OVER (
            PARTITION BY kind, record_id ORDER BY assessed_at DESC, assessment_id DESC) = 1)"""  # noqa: S608
    rules = query(
        lake,
        f"""SELECT rule_id, day, count(*) AS n FROM (
              SELECT unnest(rule_ids) AS rule_id, CAST(assessed_at AS DATE) AS day
              FROM {latest}) GROUP BY ALL""",  # noqa: S608 (values are ours)
    ).to_pylist()
    models = query(
        lake,
        f"""SELECT model_version, CAST(assessed_at AS DATE) AS day, count(*) AS n,
                   count(*) FILTER (WHERE lane <> 'green') AS flagged
            FROM {latest} WHERE model_version IS NOT NULL GROUP BY ALL""",  # noqa: S608
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
