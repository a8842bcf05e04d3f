"""Hit-rate report: per rule and per model over time, the compliance sample apart, weak rules flagged.

Hits (how often a rule fired, how many records a model sent to an officer) come from the lake's
``risk.assessments``, a record assessed more than once counted by its latest assessment. Outcomes
come from the inspection results posted for assessments (ops) and from those acquired with the data
(``std.inspection_results``), linked through their declaration to its latest assessment. A rule is
flagged ``never_hit`` when it is active and fired on nothing in the window, and
``only_false_positives`` when at least ``min_inspected`` of its hits were inspected and none found
fraud. The random sample's hit rate is the unbiased baseline to read the others against.

``office`` scopes the whole report to one customs office (an office-bound caller's; None: every
office), as the office rule scopes ``risk.assessments`` for SQL (docs/decisions/0081 and 0090):
hits of that office's assessments, results posted for its queue items, and acquired results of its
declarations. Rows without an office belong to no office and count only in an unscoped report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from sciti.lake import Lake, open_lake, query
from sciti.lake.views import quote_literal
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_TABLE
from sciti.risk.engine.errors import EngineError
from sciti.risk.engine.feedback import FEEDBACK_SOURCE
from sciti.settings import Settings

PERIODS = ("day", "week", "month")
RESULTS_TABLE = get_kind("inspection_result").ident  # std.inspection_results
WINDOW_DAYS = 90  # the default window, and each source's share of a window over the data


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
    office: str | None = None,
) -> dict[str, Any]:
    """The report as plain data (the API answers it as JSON; the CLI prints it as tables).

    ``office``: count only that office's assessments and inspections (None: every office).
    """
    if period not in PERIODS:
        raise EngineError(f"unknown period {period!r}", remedy=f"use one of {', '.join(PERIODS)}")
    until = until or datetime.now(UTC).date() + timedelta(days=1)
    since = since or until - timedelta(days=WINDOW_DAYS)
    hits = _lake_hits(settings, since, until, kind, office)
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
    posted = _posted_outcomes(settings, since, until, kind, office)
    acquired = _acquired_outcomes(settings, since, until, kind, office)
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
        "office": office,  # the office counted (None: every office)
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


def _office_sql(column: str, office: str | None) -> str:
    """A condition keeping ``column``'s office (true for every office when ``office`` is None)."""
    return "true" if office is None else f"{column} = {quote_literal(office)}"


def _posted(q: Any, kind: str | None, office: str | None) -> Any:
    """``q`` over results posted for an assessment (``POST /inspections``), of ``kind`` and ``office``.

    A posted result has no office of its own: it is its queue item's (every posted result has one),
    the office of the record the assessment selected, as the queue's office rule has it.
    """
    if kind:
        q = q.where(RiskInspection.kind == kind)
    if office is not None:
        q = q.join(RiskQueueItem, RiskQueueItem.assessment_id == RiskInspection.assessment_id).where(
            RiskQueueItem.office_code == office
        )
    return q


def _posted_outcomes(
    settings: Settings, since: date, until: date, kind: str | None, office: str | None
) -> list[Outcome]:
    inspected = RiskInspection.inspected_on
    q = select(RiskInspection).where(inspected >= since, inspected < until)
    with session_scope(settings.resolved_ops_db_url) as session:
        return [
            Outcome(i.inspected_on, bool(i.fraud), i.selection_reason, i.rule_ids or [], i.model_version)
            for i in session.scalars(_posted(q, kind, office))
        ]


def _acquired_sql(since: date | None, until: date | None, office: str | None) -> str:
    """The acquired results linked to their declaration's latest assessment, with the office of
    each (``record_office``: the assessed record's, ``result_office``: the result's own)."""
    dates = (
        f"i.inspected_on >= DATE '{since.isoformat()}' AND i.inspected_on < DATE '{until.isoformat()}'"
        if since is not None and until is not None
        else "true"
    )
    # The office is checked after both "latest" choices, so a record counts under the office of the
    # assessment that is its latest, as its hits do. A result must be its record's office's, and
    # when it names an office of its own, that one's too: an office-bound account could not read
    # another office's result row in SQL either.
    own = _office_sql("coalesce(result_office, record_office)", office)
    mine = f"{_office_sql('record_office', office)} AND {own}"
    return f"""WITH a AS (
          SELECT record_id, assessed_at, assessment_id, rule_ids, model_version, office_code
          FROM risk.assessments WHERE kind = 'declaration'
          QUALIFY row_number() OVER (
              PARTITION BY record_id ORDER BY assessed_at DESC, assessment_id DESC) = 1)
        SELECT * FROM (
          SELECT i.inspected_on, coalesce(i.fraud, false) AS fraud, i.selection_reason,
                 a.rule_ids, a.model_version, a.office_code AS record_office, i.office_code AS result_office
          FROM {RESULTS_TABLE} i
          JOIN std.declarations d ON d.declaration_id = i.declaration_id
          JOIN a ON a.record_id = d.record_id
          WHERE i.source <> '{FEEDBACK_SOURCE}' AND {dates}
          QUALIFY row_number() OVER (
              PARTITION BY i.record_id ORDER BY a.assessed_at DESC, a.assessment_id DESC) = 1)
        WHERE {mine}"""  # noqa: S608 (values are ours)


def _acquired_lake(settings: Settings, kind: str | None) -> Lake | None:
    """The lake when acquired results can be linked (declarations, with assessments), else None."""
    if kind not in (None, "declaration"):
        return None
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not all(lake.exists(t) for t in (ASSESSMENTS_TABLE, RESULTS_TABLE, "std.declarations")):
        return None
    return lake


def _acquired_outcomes(
    settings: Settings, since: date, until: date, kind: str | None, office: str | None = None
) -> list[Outcome]:
    """Inspection results that came with the data (a clearance system's connector, not
    ``POST /inspections``), each linked to its declaration's latest assessment.

    They name the declaration, not an assessment, so the link goes through ``std.declarations``.
    The latest assessment is taken even when it was made after the inspection (history scored
    later, as a backtest): it is what the rules and model in force say about that record now.
    """
    lake = _acquired_lake(settings, kind)
    if lake is None:
        return []
    rows = query(lake, _acquired_sql(since, until, office)).to_pylist()
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
    settings: Settings, since: date, until: date, kind: str | None, office: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists(ASSESSMENTS_TABLE):
        return {"rules": [], "models": []}
    start, end = since.isoformat(), until.isoformat()
    where = f"assessed_at >= TIMESTAMPTZ '{start}' AND assessed_at < TIMESTAMPTZ '{end}'"
    if kind:
        where += f" AND kind = '{kind.replace(chr(39), '')}'"
    # A record scored again (batch re-run, amended declaration) counts once: its latest assessment
    # in the window, the one its queue item now follows; the older ones were superseded. The office
    # is checked after that choice, so a record counts under its latest assessment's office only.
    latest = f"""(SELECT * FROM (SELECT * FROM risk.assessments WHERE {where}
        QUALIFY row_number() OVER (
            PARTITION BY kind, record_id ORDER BY assessed_at DESC, assessment_id DESC) = 1)
        WHERE {_office_sql("office_code", office)})"""  # noqa: S608
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


def data_window(
    settings: Settings, *, office: str | None = None, days: int = WINDOW_DAYS
) -> tuple[date, date] | None:
    """A report window over the newest data rather than the wall clock, for the dashboard:
    ``(since, until)``, ``until`` exclusive; None when there are neither assessments nor results.

    It ends with the newest day of the assessments and inspection results the report would count
    (for ``office``), and begins ``days`` before the older of the two newest days, so that each of
    the two takes its last ``days`` days. Assessed and inspected on the same days (a live system),
    that is the usual last ``days`` days; history scored later (the demo, a backtest) has its
    assessments months after its inspections, and the window then spans both (docs/decisions/0090).
    """
    assessed, acquired, posted = (
        _newest_assessment(settings, office),
        _newest_acquired(settings, office),
        _newest_posted(settings, office),
    )
    # Results officers post are made on the day of work: on a live system that is within the
    # assessments' last days anyway; on history scored later, one result posted today must not
    # shrink the window to today's 90 days and drop the history's results from the figures.
    anchors = [d for d in (assessed, acquired) if d] or [d for d in (posted,) if d]
    if not anchors:
        return None
    newest = max(d for d in (assessed, acquired, posted) if d)
    return min(anchors) - timedelta(days=days - 1), newest + timedelta(days=1)


def _newest_assessment(settings: Settings, office: str | None) -> date | None:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists(ASSESSMENTS_TABLE):
        return None
    (day,) = (
        query(
            lake,
            f"""SELECT CAST(max(assessed_at) AS DATE) FROM risk.assessments
            WHERE {_office_sql("office_code", office)}""",  # noqa: S608 (values are ours)
        )
        .column(0)
        .to_pylist()
    )
    return day


def _newest_posted(settings: Settings, office: str | None) -> date | None:
    """The newest day of the results posted to SCITI (API, record page) that the report counts."""
    with session_scope(settings.resolved_ops_db_url) as session:
        day: date | None = session.scalar(
            _posted(select(func.max(RiskInspection.inspected_on)), None, office)
        )
    return day


def _newest_acquired(settings: Settings, office: str | None) -> date | None:
    """The newest day of the acquired results (the inspection results feed) the report counts."""
    lake = _acquired_lake(settings, None)
    if lake is None:
        return None
    (day,) = (
        query(lake, f"SELECT max(inspected_on) FROM ({_acquired_sql(None, None, office)})")  # noqa: S608
        .column(0)
        .to_pylist()
    )
    return day


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


__all__ = ["PERIODS", "RESULTS_TABLE", "WINDOW_DAYS", "data_window", "hit_report"]
