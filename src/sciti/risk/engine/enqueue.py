"""Putting assessments on the officers' queue: at most one open item per record and kind.

A newer assessment of a record supersedes the record's open item (status ``superseded``, the row
kept for audit, ``newer_assessment_id`` naming its successor); a newer flagged assessment becomes
the one open item, a newer green one just clears the record. An item an officer already worked
(taken, or lane overridden) is not replaced: the inspection that follows must link to the
assessment that selected the record, and work in hand must not vanish under the officer. It keeps
its place and gets ``newer_assessment_id`` so the officer sees that the record was re-assessed.
A record already inspected (its item ``done``) is not queued again by a re-assessment of the same
record: it was cleared or acted on; an amended declaration is another record and is queued.

Real-time (``store.write``) and batch scoring (``scoring.score_since``) both come through here, in
the transaction that stores the new assessments.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine.errors import WorkflowConflict

OPEN = ("open", "assigned")
WORKED = ("assigned", "done")  # an officer has it in hand, or it was inspected
CHUNK = 1000  # record ids per lookup: well under every database's bound-parameter limit

Key = tuple[str, str]  # (kind, record_id)


def enqueue(session: Session, assessed: list[tuple[str, str, str]], flagged: list[dict[str, Any]]) -> int:
    """Queue ``flagged`` rows; ``assessed`` is every new (kind, record_id, assessment_id), oldest
    first (green ones too: they supersede). Returns how many open items were superseded."""
    latest: dict[Key, str] = {}
    for kind, record_id, assessment_id in assessed:
        latest[(kind, record_id)] = assessment_id
    worked, replaced = _supersede_open(session, latest)
    rows = []
    for row in flagged:
        key = (row["kind"], row["record_id"])
        newest = latest.get(key, row["assessment_id"])
        if newest != row["assessment_id"]:  # an older assessment of the same record in this batch
            rows.append({**row, "status": "superseded", "newer_assessment_id": newest})
        elif key not in worked:
            rows.append({**row, "status": "open"})
        # else: the officer's item stays the record's one item and names this assessment
    for start in range(0, len(rows), 5000):
        session.execute(insert(RiskQueueItem), rows[start : start + 5000])
    return replaced


def _supersede_open(session: Session, latest: dict[Key, str]) -> tuple[set[Key], int]:
    """Mark the records' open items superseded, or flag worked and inspected ones as re-assessed."""
    by_kind: dict[str, list[str]] = {}
    for kind, record_id in latest:
        by_kind.setdefault(kind, []).append(record_id)
    worked: set[Key] = set()
    changes: list[dict[str, Any]] = []
    # Core, not the ORM: this runs in every real-time group commit, mostly finding nothing, and the
    # ORM's statement handling doubles its cost.
    t, conn = RiskQueueItem.__table__, session.connection()
    for kind, ids in by_kind.items():
        for start in range(0, len(ids), CHUNK):
            q = select(t.c.assessment_id, t.c.record_id, t.c.status, t.c.lane, t.c.assigned_lane).where(
                t.c.kind == kind,
                t.c.record_id.in_(ids[start : start + CHUNK]),
                t.c.status.in_((*OPEN, "done")),
            )
            for aid, record_id, status, lane, assigned_lane in conn.execute(q):
                newer = latest[(kind, record_id)]
                if status in WORKED or lane != assigned_lane:
                    worked.add((kind, record_id))
                    changes.append({"assessment_id": aid, "newer_assessment_id": newer})
                else:
                    changes.append(
                        {"assessment_id": aid, "status": "superseded", "newer_assessment_id": newer}
                    )
    superseded = [c for c in changes if "status" in c]
    refreshed = [c for c in changes if "status" not in c]
    for group in (superseded, refreshed):  # ORM bulk update by primary key: same keys per call
        for start in range(0, len(group), 5000):
            session.execute(update(RiskQueueItem), group[start : start + 5000])
    return worked, len(superseded)


def refuse_superseded(session: Session, assessment_id: str) -> None:
    """Work goes to the record's current item: taking or overriding a superseded one would reopen it
    beside its successor."""
    item = session.get(RiskQueueItem, assessment_id)
    if item is not None and item.status == "superseded":
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} was re-assessed: this queue item is superseded",
            remedy=f"work on the newer assessment {item.newer_assessment_id} instead",
            details={"assessment_id": assessment_id, "newer_assessment_id": item.newer_assessment_id},
        )


__all__ = ["enqueue", "refuse_superseded"]
