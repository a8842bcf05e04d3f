"""Batch scoring: everything ingested in a window, assessed, written to the lake, flagged ones queued
(all or nothing: see ``keep``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.manifest import DataFile
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sciti.lake import Lake, open_lake, query
from sciti.lake.views import quote_literal
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskCapacityUse
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.assessor import Assessor
from sciti.risk.engine.batch import _unit_ids
from sciti.risk.engine.columns import ID_PREFIX
from sciti.risk.engine.enqueue import ATTEMPTS, enqueue
from sciti.risk.engine.store import NO_OFFICE
from sciti.risk.lanes import LANE_MEANING, LanePolicy, ration_red
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine.scoring")


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


class RedPlaces:
    """Red-lane capacity for one batch: which red decisions (not from the sample) get a place at
    their office that day, highest score first; the rest go to the next-best lane, said why."""

    def __init__(self, policy: LanePolicy, table: pa.Table):
        self.policy = policy
        self.table = table
        lanes = table["lane"].to_numpy(zero_copy_only=False).astype(object)
        self.lanes = lanes
        self.candidates = np.where(table["sampled"].to_numpy(zero_copy_only=False), "sampled", lanes)
        limited = policy.limits_red  # if not, every red decision keeps its place, none counted
        self.offices: list[str | None] = table["office_code"].to_pylist() if limited else []
        days = pc.strftime(table["assessed_at"], "%Y-%m-%d") if limited else pa.array([], pa.string())
        self.days: list[str] = days.to_pylist()
        self.scores = table["score"].to_numpy(zero_copy_only=False).astype(np.float64)

    def fits(self, session: Session, *, lock: bool) -> np.ndarray:
        """Per row, whether it keeps its lane, given the places taken so far (locked on PostgreSQL
        with ``lock``, until the transaction ends)."""
        if not self.policy.limits_red or self.table.num_rows == 0:
            return np.ones(self.table.num_rows, dtype=bool)
        wanted = sorted({date.fromisoformat(d) for d in self.days})
        q = select(RiskCapacityUse).where(RiskCapacityUse.day.in_(wanted))
        rows = session.scalars(q.with_for_update() if lock else q)
        used = {(_office(r.office_code), r.day.isoformat()): r.used for r in rows}
        return ration_red(self.policy, self.offices, self.days, self.scores, self.candidates, used)

    def apply(self, fits: np.ndarray) -> tuple[pa.Table, int]:
        """The batch with the red decisions that found no place moved down; and how many moved."""
        over = np.flatnonzero(~fits)
        if over.size == 0:
            return self.table, 0
        table = self.table
        kinds = table["kind"].to_pylist()
        lane_col = self.lanes.tolist()
        reasons = table["reasons"].to_pylist()
        for i in over.tolist():
            o = self.policy.for_kind(kinds[i]).over_capacity
            office, day, cap = self.offices[i], self.days[i], self.policy.capacity(self.offices[i])
            lane_col[i] = o
            reasons[i] = [
                *reasons[i],
                f"Red-lane capacity of office {office or 'unknown'} for {day} is used up "
                f"({cap} physical inspections): {o} lane ({LANE_MEANING[o]}) instead",
            ]
        lane_at, reasons_at = table.schema.get_field_index("lane"), table.schema.get_field_index("reasons")
        table = table.set_column(lane_at, "lane", pa.array(lane_col, pa.string()))
        table = table.set_column(reasons_at, "reasons", pa.array(reasons, pa.list_(pa.string())))
        return table, int(over.size)

    def take(self, session: Session, fits: np.ndarray) -> None:
        """Count the places granted, added to the stored counts (a real-time answer may take one too)."""
        if not self.policy.limits_red:
            return
        granted = np.where(fits, self.candidates, "released")
        taken = Counter(
            (o or NO_OFFICE, d)
            for o, d, lane in zip(self.offices, self.days, granted, strict=True)
            if lane == "red" and self.policy.capacity(o) is not None
        )
        for (office, day), n in taken.items():
            key = (office, date.fromisoformat(day))
            done = session.execute(
                update(RiskCapacityUse)
                .where(RiskCapacityUse.office_code == key[0], RiskCapacityUse.day == key[1])
                .values(used=RiskCapacityUse.used + n)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                # a counter another writer creates meanwhile fails this insert: the batch is tried again
                session.execute(insert(RiskCapacityUse).values(office_code=key[0], day=key[1], used=n))


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
    p = assessor.kind_parts(kind)
    result = ScoreResult(
        kind,
        records.num_rows,
        table.num_rows,
        model_version=p.model_version,
        rules_version=p.rules.stamp,
        skipped=skipped,
    )
    if table.num_rows == 0:
        return result
    batch_id = f"score-{uuid.uuid4().hex[:20]}"
    table, result.over_capacity, result.superseded, result.queued = keep(
        settings, assessor.policy, table, batch_id
    )
    result.lanes = dict(Counter(table["lane"].to_pylist()))
    result.sampled = int(sum(table["sampled"].to_pylist()))
    result.batch_id = batch_id
    return result


def _office(key: str) -> str | None:
    return None if key == NO_OFFICE else key


class _PlacesMoved(Exception):
    """Real-time answers took red places while the batch's files were written."""


def keep(
    settings: Settings, policy: LanePolicy, table: pa.Table, batch_id: str
) -> tuple[pa.Table, int, int, int]:
    """Ration red places, queue the flagged and write the assessments to the lake, all or nothing.

    The batch's files are written first, with no lock held; then one operational transaction takes
    the places and queues the records, and the lake commit comes last inside it, so a refused queue
    row leaves nothing in the lake. Should the database then fail to commit, the lake rows are
    withdrawn: an assessment in the lake that never reached the queue would be skipped by every
    ``unassessed_only`` run after it. If real-time answers took places meanwhile and the batch's
    lanes would change, the files are written again; the last attempt writes them under the lock.
    Returns (table as kept, red over capacity, open items superseded, rows queued).
    """
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    url = settings.resolved_ops_db_url
    places = RedPlaces(policy, table)
    assessed = _assessed(table)
    for attempt in range(1, ATTEMPTS + 1):
        fits: np.ndarray | None = None
        staged: list[DataFile] = []
        if attempt < ATTEMPTS:
            fits = np.ones(table.num_rows, dtype=bool)
            if policy.limits_red:  # the places as they stand, read without a lock
                with session_scope(url) as session:
                    fits = places.fits(session, lock=False)
            kept, over = places.apply(fits)
            staged = lake.stage(ASSESSMENTS_TABLE, kept)
        committing = False
        try:
            opened = time.perf_counter()
            with session_scope(url) as session:
                now = places.fits(session, lock=True)
                if fits is None:
                    fits = now
                    kept, over = places.apply(fits)
                    staged = lake.stage(ASSESSMENTS_TABLE, kept)
                elif not np.array_equal(now, fits):
                    raise _PlacesMoved
                places.take(session, fits)
                rows = queue_rows(kept)
                superseded = enqueue(session, assessed, rows)
                session.flush()
                committing = True
                lake.commit_staged(ASSESSMENTS_TABLE, staged, batch_id=batch_id)
            held_ms = (time.perf_counter() - opened) * 1000
            log.debug(
                "scoring batch kept",
                extra={"batch_id": batch_id, "assessments": kept.num_rows, "queued": len(rows),
                       "attempt": attempt, "transaction_ms": round(held_ms, 1)},
            )  # fmt: skip
            return kept, over, superseded, len(rows)
        except (_PlacesMoved, IntegrityError):
            if committing:
                _withdraw(lake, table, batch_id)
                raise
            lake.discard_staged(ASSESSMENTS_TABLE, staged)
            if attempt == ATTEMPTS:  # another writer queued or counted the same records each time
                raise
        except BaseException:
            if committing:
                _withdraw(lake, table, batch_id)
            else:
                lake.discard_staged(ASSESSMENTS_TABLE, staged)
            raise
    raise AssertionError("unreachable")


def _assessed(table: pa.Table) -> list[tuple[str, str, str]]:
    cols = (table["kind"].to_pylist(), table["record_id"].to_pylist(), table["assessment_id"].to_pylist())
    return list(zip(*cols, strict=True))


def _withdraw(lake: Lake, table: pa.Table, batch_id: str) -> None:
    """Take a batch's assessments out of the lake again, if they got there (their ids share a
    per-batch prefix)."""
    prefixes = pc.unique(pc.utf8_slice_codeunits(table["assessment_id"], 0, ID_PREFIX)).to_pylist()
    where = " OR ".join(f"assessment_id LIKE {quote_literal(p + '%')}" for p in prefixes)
    try:
        if lake.has_batch(ASSESSMENTS_TABLE, batch_id):
            lake.delete(ASSESSMENTS_TABLE, where, batch_id=f"{batch_id}-withdrawn")
    except Exception:
        log.exception(
            "scoring batch %s: its assessments may be in the lake without being queued, and taking "
            "them out failed; score these records again without --unassessed-only",
            batch_id,
        )


__all__ = ["RedPlaces", "ScoreResult", "assessed_ids", "keep", "queue_rows", "score_since"]
