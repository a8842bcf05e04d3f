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
the transaction that stores the new assessments, run by ``committed``: a unique index allows one
open item per record, so two writers that queue the same record at the same instant cannot both
succeed; the one refused tries again and then sees, and supersedes, the other's item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem

T = TypeVar("T")
ATTEMPTS = 3

OPEN = ("open", "assigned")
WORKED = ("assigned", "done")  # an officer has it in hand, or it was inspected
CHUNK = 1000  # record ids per lookup: well under every database's bound-parameter limit

Key = tuple[str, str]  # (kind, record_id)

# Core statements built once, not the ORM's: this runs in every real-time group commit, mostly
# finding nothing, and building and handling the statements cost more than the database's work.
_T = cast(Table, RiskQueueItem.__table__)
_FIND = select(_T.c.assessment_id, _T.c.record_id, _T.c.status, _T.c.lane, _T.c.assigned_lane).where(
    _T.c.kind == bindparam("kind"),  # with record_id: the (kind, record_id) index
    _T.c.record_id.in_(bindparam("ids", expanding=True)),
    _T.c.status.in_((*OPEN, "done")),
)
_SUPERSEDE = (
    update(_T)
    .where(_T.c.assessment_id == bindparam("item"))
    .values(status="superseded", newer_assessment_id=bindparam("newer"))
)
_REFRESH = (
    update(_T).where(_T.c.assessment_id == bindparam("item")).values(newer_assessment_id=bindparam("newer"))
)
_INSERT = insert(_T)


def committed(url: str, work: Callable[[Session], T]) -> T:
    """``work`` in one transaction, tried again when the database refused it for a conflict (the
    one-open-item index: another writer queued one of its records first)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with session_scope(url) as session:
                return work(session)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def enqueue(session: Session, assessed: list[tuple[str, str, str]], flagged: list[dict[str, Any]]) -> int:
    """Queue ``flagged`` rows; ``assessed`` is every new (kind, record_id, assessment_id), oldest
    first (green ones too: they supersede). Returns how many open items were superseded.

    The rows are the caller's to give away: their status is set in place (a copy of each would
    cost more than the lookups, inside the transaction that real-time answers wait for)."""
    latest: dict[Key, str] = {}
    for kind, record_id, assessment_id in assessed:
        latest[(kind, record_id)] = assessment_id
    worked, replaced = _supersede_open(session, latest)
    rows = []
    for row in flagged:
        key = (row["kind"], row["record_id"])
        newest = latest.get(key, row["assessment_id"])
        if newest != row["assessment_id"]:  # an older assessment of the same record in this batch
            row["status"], row["newer_assessment_id"] = "superseded", newest
        elif key in worked:
            continue  # the officer's item stays the record's one item and names this assessment
        else:
            row["status"], row["newer_assessment_id"] = "open", None
        rows.append(row)
    conn = session.connection()
    for start in range(0, len(rows), 5000):
        conn.execute(_INSERT, rows[start : start + 5000])
    return replaced


def _supersede_open(session: Session, latest: dict[Key, str]) -> tuple[set[Key], int]:
    """Mark the records' open items superseded, or flag worked and inspected ones as re-assessed."""
    by_kind: dict[str, list[str]] = {}
    for kind, record_id in latest:
        by_kind.setdefault(kind, []).append(record_id)
    worked: set[Key] = set()
    superseded: list[dict[str, str]] = []
    refreshed: list[dict[str, str]] = []
    conn = session.connection()
    for kind, ids in by_kind.items():
        for start in range(0, len(ids), CHUNK):
            found = conn.execute(_FIND, {"kind": kind, "ids": ids[start : start + CHUNK]})
            for aid, record_id, status, lane, assigned_lane in found:
                change = {"item": aid, "newer": latest[(kind, record_id)]}
                if status in WORKED or lane != assigned_lane:
                    worked.add((kind, record_id))
                    refreshed.append(change)
                else:
                    superseded.append(change)
    for statement, group in ((_SUPERSEDE, superseded), (_REFRESH, refreshed)):
        for start in range(0, len(group), 5000):
            conn.execute(statement, group[start : start + 5000])
    return worked, len(superseded)


__all__ = ["committed", "enqueue"]
