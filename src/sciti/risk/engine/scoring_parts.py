"""Parts of scoring runs that are queued and counted, with their lake commit still to come.

A part of a scoring run (``scoring.keep``) is committed to the operational database first: its
queue items, its red places and a row in ``risk_scoring_parts`` naming its staged Parquet files.
Its files are committed to ``risk.assessments`` next, and the row deleted. A crash or a failed
lake commit in between leaves the row; ``finish`` commits the files later (every flusher pass,
the start of every scoring run), unless the lake already holds the part's batch id. So an
assessment an officer was given always reaches the lake, and never twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.manifest import DataFile
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from sciti.lake import Lake
from sciti.lake.files import local_path
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskScoringPart
from sciti.risk.engine.assessment import ASSESSMENTS_TABLE

log = logging.getLogger("sciti.risk.engine.scoring_parts")
STALE_SECONDS = 120.0  # a part's own run commits it within milliseconds; older ones were interrupted


def record(session: Session, batch_id: str, files: list[DataFile], rows: int) -> None:
    """Note the part in its own transaction: it is queued and counted, its files not yet in the lake."""
    paths = [_local(f.file_path) for f in files]
    session.add(RiskScoringPart(batch_id=batch_id, files=paths, rows=rows, claimed_at=datetime.now(UTC)))


def done(url: str, batch_id: str) -> None:
    with session_scope(url) as session:
        session.execute(delete(RiskScoringPart).where(RiskScoringPart.batch_id == batch_id))


def noted(url: str, batch_id: str) -> bool:
    """Whether the part is noted; True also when the database cannot say (its files must stay)."""
    try:
        with session_scope(url) as session:
            return session.get(RiskScoringPart, batch_id) is not None
    except Exception:
        log.warning("scoring part %s: cannot tell whether it was committed; its files are kept", batch_id)
        return True


def record_ids(url: str, kind: str) -> pa.Array:
    """The record ids of ``kind`` assessed in parts still waiting for the lake: they are queued, so
    a run that scores only unassessed records must skip them too. Read from the staged files."""
    found = [pa.array([], pa.string())]
    for path in staged_files(url):
        try:
            rows = pq.read_table(path, columns=["kind", "record_id"])
        except OSError:
            log.warning("scoring part file %s is missing: its records count as not assessed", path)
            continue
        found.append(
            rows.filter(pc.equal(rows["kind"], kind))["record_id"].combine_chunks().cast(pa.string())
        )
    return pa.concat_arrays(found)


def staged_files(url: str) -> list[str]:
    """The staged files of every part still waiting for the lake: lake upkeep must not take them
    for orphans, however old they are."""
    with session_scope(url) as session:
        return [f for part in session.scalars(select(RiskScoringPart)) for f in part.files]


def pending(url: str) -> int:
    """Assessments of parts still waiting for their lake commit."""
    with session_scope(url) as session:
        return int(session.scalar(select(func.coalesce(func.sum(RiskScoringPart.rows), 0))) or 0)


def finish(url: str, lake: Lake, *, stale_seconds: float | None = None) -> int:
    """Commit to the lake the parts left waiting at least ``stale_seconds`` (``STALE_SECONDS``);
    returns their rows.

    A part is taken up first (its ``claimed_at`` moved to now), so two finishers never commit the
    same one. A part whose files cannot be committed stays, to be tried again, and is logged."""
    stale_seconds = STALE_SECONDS if stale_seconds is None else stale_seconds
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_seconds)
    with session_scope(url) as session:
        waiting = session.scalars(
            select(RiskScoringPart.batch_id).where(RiskScoringPart.claimed_at <= cutoff)
        ).all()
    finished = 0
    for batch_id in waiting:
        with session_scope(url) as session:
            taken = session.execute(
                update(RiskScoringPart)
                .where(RiskScoringPart.batch_id == batch_id, RiskScoringPart.claimed_at <= cutoff)
                .values(claimed_at=datetime.now(UTC))
            )
            part = session.get(RiskScoringPart, batch_id) if taken.rowcount else None  # type: ignore[attr-defined]
            files, rows = (list(part.files), part.rows) if part else ([], 0)
        if part is None:
            continue  # another finisher has it
        try:
            if not lake.has_batch(ASSESSMENTS_TABLE, batch_id):
                lake.append_files(ASSESSMENTS_TABLE, files, batch_id=batch_id)
                finished += rows
                log.warning(
                    "scoring part %s: %d assessments committed to risk.assessments after an interruption",
                    batch_id,
                    rows,
                )
            done(url, batch_id)
        except Exception:
            log.exception(
                "scoring part %s: %d queued assessments could not be committed to risk.assessments; "
                "tried again in %.0f s (its files: %s)",
                batch_id,
                rows,
                stale_seconds,
                ", ".join(files),
            )
    return finished


def _local(location: str) -> str:
    """A staged file's location as a local path (the lake's data files live in a local folder)."""
    return local_path(location) or location


__all__ = ["STALE_SECONDS", "done", "finish", "noted", "pending", "record", "record_ids", "staged_files"]
