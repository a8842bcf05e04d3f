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
from sqlalchemy import insert, select

from sciti.lake import open_lake
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskCapacityUse, RiskQueueItem
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.assessor import Assessor
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


def score_since(
    settings: Settings,
    kind: str,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    assessor: Assessor | None = None,
    explain: str = "flagged",
) -> ScoreResult:
    """Score the records of ``kind`` in the window; write ``risk.assessments``; queue the flagged."""
    assessor = assessor or Assessor.load(settings, kinds=(kind,))
    records = parts.lake_records(settings, kind, since=since, until=until)
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
    if rows:
        with session_scope(settings.resolved_ops_db_url) as session:
            for start in range(0, len(rows), 5000):
                session.execute(insert(RiskQueueItem), rows[start : start + 5000])
    result.queued = len(rows)
    result.batch_id = batch_id
    return result


__all__ = ["ScoreResult", "apply_capacity_batch", "queue_rows", "score_since"]
