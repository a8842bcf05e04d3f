"""Batch scoring: everything ingested in a window, assessed, written to the lake, flagged ones queued."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from sciti.lake import open_lake, query
from sciti.lake.views import quote_literal
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskCapacityUse
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.assessor import Assessor
from sciti.risk.engine.batch import _unit_ids
from sciti.risk.engine.enqueue import committed, enqueue
from sciti.risk.engine.store import NO_OFFICE
from sciti.risk.lanes import LANE_MEANING, LanePolicy, ration_red
from sciti.settings import Settings


@dataclass
class ScoreResult:
    kind: str
    records: int
    assessments: int
    lanes: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    queued: int = 0
    superseded: int = 0  # open queue items of these records replaced by the new assessments
    skipped: int = 0  # records left alone because they already had an assessment (unassessed_only)
    over_capacity: int = 0
    batch_id: str | None = None
    model_version: str | None = None
    rules_version: str = ""


def apply_capacity_batch(settings: Settings, policy: LanePolicy, table: pa.Table) -> tuple[pa.Table, int]:
    """Red decisions (not from the sample) beyond the office's capacity today go to the next-best lane."""
    if table.num_rows == 0:
        return table, 0
    lanes = np.asarray(table["lane"].to_pylist(), dtype=object)
    sampled = np.asarray(table["sampled"].to_pylist(), dtype=bool)
    candidates = np.where(sampled, "sampled", lanes)
    offices = table["office_code"].to_pylist()
    days = [d.date().isoformat() for d in table["assessed_at"].to_pylist()]
    scores = np.asarray(table["score"].to_pylist(), dtype=np.float64)
    used: dict[tuple[str | None, str], int] = {}
    with session_scope(settings.resolved_ops_db_url) as session:
        for row in session.scalars(select(RiskCapacityUse)):
            used[(None if row.office_code == NO_OFFICE else row.office_code, row.day.isoformat())] = row.used
    keep = ration_red(policy, offices, days, scores, candidates, used)
    over = np.flatnonzero(~keep)
    if over.size == 0:
        _count_places(settings, policy, offices, days, candidates)
        return table, 0
    kinds = table["kind"].to_pylist()
    lane_col = lanes.tolist()
    reasons = table["reasons"].to_pylist()
    for i in over.tolist():
        o = policy.for_kind(kinds[i]).over_capacity
        cap = policy.capacity(offices[i])
        lane_col[i] = o
        reasons[i] = [
            *reasons[i],
            f"Red-lane capacity of office {offices[i] or 'unknown'} for {days[i]} is used up "
            f"({cap} physical inspections): {o} lane ({LANE_MEANING[o]}) instead",
        ]
    table = table.set_column(table.schema.get_field_index("lane"), "lane", pa.array(lane_col, pa.string()))
    table = table.set_column(
        table.schema.get_field_index("reasons"), "reasons", pa.array(reasons, pa.list_(pa.string()))
    )
    granted = np.where(keep, candidates, "released")
    _count_places(settings, policy, offices, days, granted)
    return table, int(over.size)


def _count_places(
    settings: Settings, policy: LanePolicy, offices: list[Any], days: list[str], lanes: Any
) -> None:
    taken = Counter(
        (o or NO_OFFICE, d)
        for o, d, lane in zip(offices, days, lanes, strict=True)
        if lane == "red" and policy.capacity(o) is not None
    )
    if not taken:
        return
    with session_scope(settings.resolved_ops_db_url) as session:
        for (office, day), n in taken.items():
            key = (office, datetime.fromisoformat(day).date())
            row = session.get(RiskCapacityUse, key)
            if row is None:
                session.add(RiskCapacityUse(office_code=office, day=key[1], used=n))
            else:
                row.used += n


def queue_rows(table: pa.Table) -> list[dict[str, Any]]:
    flagged = table.filter(pc.or_(pc.not_equal(table["lane"], "green"), table["sampled"]))
    cols = ["assessment_id", "kind", "record_id", "subject_ref", "office_code", "score", "lane", "sampled",
            "reasons", "rule_ids", "model_version", "assessed_at"]  # fmt: skip
    rows = flagged.select(cols).to_pylist()
    for r in rows:
        r["assigned_lane"] = r["lane"]
        r["status"] = "open"
    return rows


def assessed_ids(settings: Settings, kind: str) -> pa.Array:
    """The record ids of ``kind`` that have at least one assessment in the lake."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists(ASSESSMENTS_TABLE):
        return pa.array([], pa.string())
    sql = f"SELECT DISTINCT record_id FROM {ASSESSMENTS_TABLE} WHERE kind = {quote_literal(kind)}"  # noqa: S608
    return query(lake, sql)["record_id"].combine_chunks()


def score_since(
    settings: Settings,
    kind: str,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    assessor: Assessor | None = None,
    explain: str = "flagged",
    unassessed_only: bool = False,
) -> ScoreResult:
    """Score the records of ``kind`` in the window; write ``risk.assessments``; queue the flagged.

    A record's new assessment supersedes its open queue item. ``unassessed_only`` scores only the
    records that have no assessment yet (a repeated set-up with unchanged rules and model).
    """
    assessor = assessor or Assessor.load(settings, kinds=(kind,))
    records = parts.lake_records(settings, kind, since=since, until=until)
    skipped = 0
    if unassessed_only and records.num_rows:
        before = records.num_rows
        # by the assessment's record id: for goods items, their declaration's
        done = pc.is_in(_unit_ids(kind, records), assessed_ids(settings, kind))
        records = records.filter(pc.invert(done))
        skipped = before - records.num_rows
    table = assessor.assess_batch(kind, records, explain=explain)
    table, over = apply_capacity_batch(settings, assessor.policy, table)
    p = assessor.kind_parts(kind)
    result = ScoreResult(
        kind,
        records.num_rows,
        table.num_rows,
        model_version=p.model_version,
        rules_version=p.rules.stamp,
        over_capacity=over,
        skipped=skipped,
    )
    if table.num_rows == 0:
        return result
    result.lanes = dict(Counter(table["lane"].to_pylist()))
    result.sampled = int(sum(table["sampled"].to_pylist()))
    batch_id = f"score-{uuid.uuid4().hex[:20]}"
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    lake.append(ASSESSMENTS_TABLE, table, batch_id=batch_id)
    rows = queue_rows(table)
    assessed = list(
        zip(
            table["kind"].to_pylist(),
            table["record_id"].to_pylist(),
            table["assessment_id"].to_pylist(),
            strict=True,
        )
    )
    url = settings.resolved_ops_db_url
    result.superseded = committed(url, lambda session: enqueue(session, assessed, rows))
    result.queued = len(rows)
    result.batch_id = batch_id
    return result


__all__ = ["ScoreResult", "apply_capacity_batch", "assessed_ids", "queue_rows", "score_since"]
