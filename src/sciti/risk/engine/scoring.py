"""Batch scoring: everything ingested in a window, assessed, written to the lake, flagged ones queued
(in whole parts, each all or nothing: see ``keep``)."""

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
from sqlalchemy.exc import IntegrityError

from sciti.lake import Lake, open_lake, query
from sciti.lake.views import quote_literal
from sciti.ops import session_scope
from sciti.risk.engine import parts, scoring_parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.assessor import Assessor
from sciti.risk.engine.batch import _unit_ids
from sciti.risk.engine.enqueue import ATTEMPTS, enqueue
from sciti.risk.engine.errors import ScoringStopped
from sciti.risk.engine.places import RedPlaces
from sciti.risk.lanes import LanePolicy
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine.scoring")
# Assessments kept per operational transaction. Real-time answers wait for such a transaction
# (SQLite has one writer; the day's capacity counters are locked), so it must stay short: a part
# of this size holds it well under a second (bench/risk_batch.py prints the longest wait).
PART_ROWS = 20_000


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


def queue_rows(table: pa.Table) -> list[dict[str, Any]]:
    flagged = table.filter(pc.or_(pc.not_equal(table["lane"], "green"), table["sampled"]))
    cols = ["assessment_id", "kind", "record_id", "subject_ref", "office_code", "score", "lane", "sampled",
            "reasons", "rule_ids", "model_version", "assessed_at"]  # fmt: skip
    if "reason_codes" in flagged.column_names:
        # The queue keeps a record's codes as one JSON array: joined by Arrow, no parse per line.
        joined = pc.binary_join_element_wise("[", pc.binary_join(flagged["reason_codes"], ","), "]", "")
        flagged = flagged.set_column(flagged.schema.get_field_index("reason_codes"), "reason_codes", joined)
        cols.append("reason_codes")
    rows = flagged.select(cols).to_pylist()
    for r in rows:
        r["assigned_lane"] = r["lane"]
        r["status"] = "open"
    return rows


def assessed_ids(settings: Settings, kind: str) -> pa.Array:
    """The record ids of ``kind`` that have at least one assessment in the lake, or in a scoring
    part that is queued and on its way there (``scoring_parts``)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    waiting = scoring_parts.record_ids(settings.resolved_ops_db_url, kind)
    if not lake.exists(ASSESSMENTS_TABLE):
        return waiting
    sql = f"SELECT DISTINCT record_id FROM {ASSESSMENTS_TABLE} WHERE kind = {quote_literal(kind)}"  # noqa: S608
    in_lake = query(lake, sql)["record_id"].combine_chunks()
    return pa.concat_arrays([in_lake, waiting]) if len(waiting) else in_lake


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
    # Parts of an interrupted run first: queued, they count as assessed.
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    scoring_parts.finish(settings.resolved_ops_db_url, lake)
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


class _PlacesMoved(Exception):
    """Real-time answers took red places while the part's files were written."""


class _LakeBehind(Exception):
    """A part is queued and counted, and its lake commit failed: ``scoring_parts.finish`` will
    commit it."""

    def __init__(self, rows: int, cause: BaseException):
        super().__init__(str(cause))
        self.rows = rows


def keep(
    settings: Settings, policy: LanePolicy, table: pa.Table, batch_id: str, *, part_rows: int = PART_ROWS
) -> tuple[pa.Table, int, int, int]:
    """Ration red places, queue the flagged and write the assessments to the lake, in whole parts.

    Each part of at most ``part_rows`` assessments is kept whole: its red places, its queue items
    and its rows in the lake, or none of them. One part's transaction holds the day's capacity
    counters and, on SQLite, the database's only write lock; real-time answers wait for it, so a
    run of millions must not hold them all at once. Places are rationed over the whole run: a
    part takes none that a higher-scored red decision later in the run needs.
    A part that fails stops the run (``ScoringStopped``), saying how much was kept.
    Returns (table as kept, red over capacity, open items superseded, rows queued).
    """
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    url = settings.resolved_ops_db_url
    n = table.num_rows
    if n == 0:
        return table, 0, 0, 0
    places = RedPlaces(policy, table)
    parts = [slice(start, min(start + part_rows, n)) for start in range(0, n, part_rows)]
    kept: list[pa.Table] = []
    over = superseded = queued = 0
    for k, rows in enumerate(parts, 1):
        name = batch_id if len(parts) == 1 else f"{batch_id}-p{k}"
        try:
            part, part_over, part_superseded, part_queued = _keep_part(lake, url, places, rows, name)
        except Exception as exc:
            done, parts_done, behind = sum(t.num_rows for t in kept), k - 1, ""
            if isinstance(exc, _LakeBehind):
                done, parts_done = done + exc.rows, k
                behind = (
                    "; the last is queued but its lake commit failed, and the flusher or the next "
                    "scoring run commits it"
                )
            # The first line only: a database error goes on with the statement and its values.
            cause = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ScoringStopped(
                f"scoring run {batch_id} stopped after keeping {done:,} of {n:,} assessments "
                f"({parts_done} of {len(parts)} parts{behind}): {cause}",
                details={"batch_id": batch_id, "kept": done, "assessments": n, "cause": type(exc).__name__},
            ) from exc
        kept.append(part)
        over, superseded, queued = over + part_over, superseded + part_superseded, queued + part_queued
    return pa.concat_tables(kept), over, superseded, queued


def _keep_part(
    lake: Lake, url: str, places: RedPlaces, rows: slice, batch_id: str
) -> tuple[pa.Table, int, int, int]:
    """Keep one part whole.

    The part's files are written first, with no lock held. Then one operational transaction takes
    the places, queues the records and notes the part as awaiting the lake
    (``scoring_parts.record``); a refused queue row or place leaves nothing anywhere. After that
    commit the files are committed to the lake: should that fail, or the process die, the note
    makes the flusher or the next scoring run commit them. If real-time answers took places
    while the files were written and the part's lanes would change, the files are written again;
    the last attempt writes them under the lock.
    """
    assessed = _assessed(places.table.slice(rows.start, rows.stop - rows.start))
    for attempt in range(1, ATTEMPTS + 1):
        fits: np.ndarray | None = None
        staged: list[DataFile] = []
        if attempt < ATTEMPTS:
            fits = np.ones(rows.stop - rows.start, dtype=bool)
            if places.policy.limits_red:  # the places as they stand, read without a lock
                with session_scope(url) as session:
                    fits = places.fits(session, rows, lock=False)
            kept, over = places.apply(fits, rows)
            staged = lake.stage(ASSESSMENTS_TABLE, kept)
            flagged = queue_rows(kept)  # before the transaction: nothing waits for it
        try:
            opened = time.perf_counter()
            with session_scope(url) as session:
                now = places.fits(session, rows, lock=True)
                if fits is None:
                    fits = now
                    kept, over = places.apply(fits, rows)
                    staged = lake.stage(ASSESSMENTS_TABLE, kept)
                    flagged = queue_rows(kept)
                elif not np.array_equal(now, fits):
                    raise _PlacesMoved
                places.take(session, fits, rows)
                queued = len(flagged)
                superseded = enqueue(session, assessed, flagged)
                scoring_parts.record(session, batch_id, staged, kept.num_rows)
            held_ms = (time.perf_counter() - opened) * 1000
        except (_PlacesMoved, IntegrityError):
            lake.discard_staged(ASSESSMENTS_TABLE, staged)
            if attempt == ATTEMPTS:  # another writer queued or counted the same records each time
                raise
            continue
        except BaseException as exc:
            # The files go only when the part's note is surely not in the database: a COMMIT that
            # failed on its way back may have gone through, and then the note needs them. (An
            # interrupted process leaves them: files no snapshot names are never read.)
            if isinstance(exc, Exception) and not scoring_parts.noted(url, batch_id):
                lake.discard_staged(ASSESSMENTS_TABLE, staged)
            raise
        # Queued and counted: the part is kept. Its files go to the lake now, or later (the note).
        try:
            lake.commit_staged(ASSESSMENTS_TABLE, staged, batch_id=batch_id)
        except Exception as exc:
            raise _LakeBehind(kept.num_rows, exc) from exc
        scoring_parts.done(url, batch_id)
        log.debug(
            "scoring part kept",
            extra={"batch_id": batch_id, "assessments": kept.num_rows, "queued": queued,
                   "attempt": attempt, "transaction_ms": round(held_ms, 1)},
        )  # fmt: skip
        return kept, over, superseded, queued
    raise AssertionError("unreachable")


def _assessed(table: pa.Table) -> list[tuple[str, str, str]]:
    cols = (table["kind"].to_pylist(), table["record_id"].to_pylist(), table["assessment_id"].to_pylist())
    return list(zip(*cols, strict=True))


__all__ = ["PART_ROWS", "ScoreResult", "assessed_ids", "keep", "queue_rows", "score_since"]
