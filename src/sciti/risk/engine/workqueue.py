"""The officers' queue of flagged records: keyset pages by score, taking a record, lane overrides.

Pages are cut by (score, assessment_id) with an index on both, so the millionth page costs what
the first does; the cursor is opaque to clients.

Every function takes ``scope``: the office of an office-bound caller (its account's
``office_code``), or None for an account that works every office. Items of other offices (and
items without an office) do not exist for a scoped caller: they are not listed, and taking or
overriding one is answered as for an unknown id (:class:`QueueItemOutsideOffice`, a 404), the way
the lake's row rules hide other offices' rows (docs/decisions/0081). ``scope`` has no default, so
no caller can forget it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.errors import InvalidInput
from sciti.ops.risk_tables import RiskOverride, RiskQueueItem
from sciti.risk.engine.errors import QueueItemNotFound, QueueItemOutsideOffice, WorkflowConflict
from sciti.risk.lanes import LANES

OPEN_STATUSES = ("open", "assigned")


@dataclass(frozen=True)
class QueuePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(score: float, assessment_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{assessment_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, assessment_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(score), assessment_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "the queue cursor is not one this server gave out",
            remedy="pass the next_cursor of the previous page unchanged, or leave it out for the first page",
            details={"field": "cursor"},
        ) from None


def item_dict(item: RiskQueueItem) -> dict[str, Any]:
    return {
        "assessment_id": item.assessment_id,
        "kind": item.kind,
        "record_id": item.record_id,
        "subject_ref": item.subject_ref,
        "office_code": item.office_code,
        "score": item.score,
        "lane": item.lane,
        "assigned_lane": item.assigned_lane,
        "sampled": item.sampled,
        "reasons": item.reasons,
        "rule_ids": item.rule_ids,
        "model_version": item.model_version,
        "assessed_at": item.assessed_at,
        "status": item.status,
        "assigned_to": item.assigned_to,
        "assigned_at": item.assigned_at,
        "newer_assessment_id": item.newer_assessment_id,
    }


def in_scope(office_code: str | None, scope: str | None) -> bool:
    """Whether an item of ``office_code`` exists for a caller of ``scope`` (None: every office)."""
    return scope is None or office_code == scope


def list_queue(
    session: Session,
    *,
    scope: str | None,
    kind: str | None = None,
    office: str | None = None,
    lane: str | None = None,
    status: str | None = None,
    assigned_to: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> QueuePage:
    """Flagged records, highest score first (then newest assessment), of ``scope``'s office only
    when given (``office`` then narrows nothing further, or finds nothing when it differs)."""
    q = select(RiskQueueItem)
    if scope is not None:
        q = q.where(RiskQueueItem.office_code == scope)
    if kind:
        q = q.where(RiskQueueItem.kind == kind)
    if office:
        q = q.where(RiskQueueItem.office_code == office)
    if lane:
        q = q.where(RiskQueueItem.lane == lane)
    q = (
        q.where(RiskQueueItem.status == status)
        if status
        else q.where(RiskQueueItem.status.in_(OPEN_STATUSES))
    )
    if assigned_to:
        q = q.where(RiskQueueItem.assigned_to == assigned_to)
    if cursor:
        score, aid = decode_cursor(cursor)
        q = q.where(
            or_(
                RiskQueueItem.score < score,
                and_(RiskQueueItem.score == score, RiskQueueItem.assessment_id < aid),
            )
        )
    q = q.order_by(RiskQueueItem.score.desc(), RiskQueueItem.assessment_id.desc()).limit(limit + 1)
    rows = list(session.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(rows[-1].score, rows[-1].assessment_id) if more and rows else None
    return QueuePage([item_dict(r) for r in rows], nxt)


def _item(session: Session, assessment_id: str, scope: str | None) -> RiskQueueItem:
    """The item to work on: one of the caller's office, and the record's current one."""
    item = session.get(RiskQueueItem, assessment_id)
    if item is None:
        raise QueueItemNotFound(details={"assessment_id": assessment_id})
    if not in_scope(item.office_code, scope):
        raise QueueItemOutsideOffice(details={"assessment_id": assessment_id})
    if item.status == "superseded":
        # Work goes to the record's current item: taking or overriding a superseded one would
        # reopen it beside its successor.
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} was re-assessed: this queue item is superseded",
            remedy=f"work on the newer assessment {item.newer_assessment_id} instead",
            details={"assessment_id": assessment_id, "newer_assessment_id": item.newer_assessment_id},
        )
    return item


def assign(session: Session, assessment_id: str, *, actor: str, scope: str | None) -> dict[str, Any]:
    """Take a flagged record (to me). Taking one already taken by someone else is refused."""
    item = _item(session, assessment_id, scope)
    if item.status == "done":
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} is already closed", remedy="pick an open record"
        )
    if item.assigned_to and item.assigned_to != actor:
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} is already taken by {item.assigned_to}",
            remedy="pick another record, or ask a supervisor to re-assign it",
        )
    item.assigned_to = actor
    item.assigned_at = datetime.now(UTC)
    item.status = "assigned"
    audit(session, actor=actor, action="risk.assign", target=f"assessment:{assessment_id}")
    return item_dict(item)


def override(
    session: Session, assessment_id: str, *, lane: str, reason: str, actor: str, scope: str | None
) -> dict[str, Any]:
    """Change a record's lane: recorded as the officer's own trigger (append-only), audited."""
    if lane not in LANES:
        raise InvalidInput(
            f"{lane!r} is not a lane", remedy=f"use one of {', '.join(LANES)}", details={"field": "lane"}
        )
    if not reason.strip():
        raise InvalidInput(
            "an override needs a reason", remedy="say why the lane changes", details={"field": "reason"}
        )
    item = _item(session, assessment_id, scope)
    if item.lane == lane:
        raise WorkflowConflict(f"{item.subject_ref or assessment_id} is already in the {lane} lane")
    entry = RiskOverride(
        assessment_id=assessment_id, from_lane=item.lane, to_lane=lane, actor=actor, reason=reason.strip()
    )
    session.add(entry)
    item.lane = lane
    audit(
        session,
        actor=actor,
        action="risk.override",
        target=f"assessment:{assessment_id}",
        details={"from": entry.from_lane, "to": lane, "reason": entry.reason},
    )
    session.flush()
    out = item_dict(item)
    out["overrides"] = overrides_of(session, assessment_id)
    return out


def queue_item(session: Session, assessment_id: str, *, scope: str | None) -> dict[str, Any] | None:
    """One item as the caller may see it (with its overrides); None when there is none for the
    caller: unknown, or of another office."""
    item = session.get(RiskQueueItem, assessment_id)
    if item is None or not in_scope(item.office_code, scope):
        return None
    out = item_dict(item)
    out["overrides"] = overrides_of(session, assessment_id)
    return out


def overrides_of(session: Session, assessment_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RiskOverride).where(RiskOverride.assessment_id == assessment_id).order_by(RiskOverride.id)
    )
    return [
        {
            "from_lane": r.from_lane,
            "to_lane": r.to_lane,
            "actor": r.actor,
            "reason": r.reason,
            "at": r.created_at,
        }
        for r in rows
    ]


__all__ = [
    "QueuePage",
    "assign",
    "decode_cursor",
    "encode_cursor",
    "in_scope",
    "list_queue",
    "override",
    "overrides_of",
    "queue_item",
]
