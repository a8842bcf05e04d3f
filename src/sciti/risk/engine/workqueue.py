"""The officers' queue of flagged records: keyset pages, taking, releasing and re-assigning a
record, lane overrides.

Pages are ordered by lane urgency first (red: physical inspection before release; then yellow;
then blue, post-clearance audit, which can wait; any other lane after), then by score, then by
assessment id. A lane rule (e.g. a watch-list hit) can send a record to red with a score of 0, and
ordering by score alone put thousands of blue items before it. The order has its own index (on
the urgency expression, score and assessment id), and the cursor carries all three, so the
millionth page costs what the first does; the cursor is opaque to clients.

An item someone has taken is worked (lane override, inspection result, release) only by its taker
or by a supervisor (``risk.supervise``), who may also re-assign it: two officers acting on one
record at once would each think the record theirs.

Every function takes ``scope``: the office of an office-bound caller (its account's
``office_code``), or None for an account that works every office. Items of other offices (and
items without an office) do not exist for a scoped caller: they are not listed, and taking or
overriding one is answered as for an unknown id (:class:`QueueItemOutsideOffice`, a 404), the way
the lake's row rules hide other offices' rows (docs/decisions/0081). ``scope`` has no default, so
no caller can forget it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnClause, Integer, literal_column, select, tuple_
from sqlalchemy.orm import Session

from sciti.access.accounts import account_usable, find_user
from sciti.access.audit import audit
from sciti.access.roles import permissions_of
from sciti.errors import InvalidInput
from sciti.ops.risk_tables import LANE_URGENCY, RiskOverride, RiskQueueItem
from sciti.risk.engine.errors import QueueItemNotFound, QueueItemOutsideOffice, WorkflowConflict
from sciti.risk.engine.reasons import from_list
from sciti.risk.lanes import LANES

OPEN_STATUSES = ("open", "assigned")
STATUSES = ("open", "assigned", "done", "superseded")
ANY_STATUS = "any"  # the ``status`` filter that lists every status, closed ones included
# The expression of the index ix_risk_queue_urgency, as SQL: a database uses an index on an
# expression only for that very expression (an equivalent one, or one with bound values, is not).
urgency_expr: ColumnClause[int] = literal_column(LANE_URGENCY, Integer())
# A lane rule's reason ends like this (decide.hit_text and the batch path's reasons).
_LANE_RULE = re.compile(r"\(rule (?P<rule>\S+) v\d+, lane (?P<lane>[a-z]+)\)$")


@dataclass(frozen=True)
class QueuePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(urgency: int, score: float, assessment_id: str) -> str:
    return base64.urlsafe_b64encode(f"{urgency}|{score!r}|{assessment_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, float, str]:
    try:
        urgency, score, assessment_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 2)
        return int(urgency), float(score), assessment_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "the queue cursor is not one this server gave out",
            remedy="pass the next_cursor of the previous page unchanged, or leave it out for the first page",
            details={"field": "cursor"},
        ) from None


def lane_rules(reasons: list[str] | None, lane: str) -> list[str]:
    """The lane rules that hit and name ``lane``: what set a record's lane when its score did not
    reach it (a watch-list rule sends a passenger to red with a score of 0)."""
    found: list[str] = []
    for reason in reasons or []:
        hit = _LANE_RULE.search(reason)
        if hit and hit["lane"] == lane and hit["rule"] not in found:
            found.append(hit["rule"])
    return found


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
        "lane_rules": lane_rules(item.reasons, item.assigned_lane),
        "sampled": item.sampled,
        "reasons": item.reasons,
        "reason_codes": from_list(item.reason_codes),
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


def may_work(assigned_to: str | None, actor: str, *, supervisor: bool) -> bool:
    """Whether ``actor`` may act on an item taken by ``assigned_to`` (None: nobody has taken it)."""
    return assigned_to is None or assigned_to == actor or supervisor


def refuse_taken(item: RiskQueueItem, actor: str, *, supervisor: bool, doing: str) -> None:
    """409 when someone else has taken ``item`` and ``actor`` is not a supervisor."""
    if may_work(item.assigned_to, actor, supervisor=supervisor):
        return
    taker = item.assigned_to
    raise WorkflowConflict(
        f"{item.subject_ref or item.assessment_id} is taken by {taker}: only {taker} or a supervisor "
        f"may {doing}",
        remedy=f"ask {taker} to release it, or a supervisor to re-assign it to you",
        details={"assessment_id": item.assessment_id, "assigned_to": taker},
    )


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
    """Flagged records, most urgent lane first, then highest score (then assessment id), of
    ``scope``'s office only when given (``office`` then narrows nothing further, or finds nothing
    when it differs). ``status``: one status, ``any`` for every one, None for open and taken."""
    q = select(RiskQueueItem, urgency_expr.label("urgency"))
    if scope is not None:
        q = q.where(RiskQueueItem.office_code == scope)
    if kind:
        q = q.where(RiskQueueItem.kind == kind)
    if office:
        q = q.where(RiskQueueItem.office_code == office)
    if lane:
        q = q.where(RiskQueueItem.lane == lane)
    if status is None:
        q = q.where(RiskQueueItem.status.in_(OPEN_STATUSES))
    elif status != ANY_STATUS:
        q = q.where(RiskQueueItem.status == status)
    if assigned_to:
        q = q.where(RiskQueueItem.assigned_to == assigned_to)
    by_score = (RiskQueueItem.score.desc(), RiskQueueItem.assessment_id.desc())
    if cursor:
        # After the cursor: the rest of its lane, then the less urgent lanes. Two searches of the
        # index, each from its own key: SQLite seeks a row value after an indexed expression only
        # when the expression is compared for equality (and then needs no sort for the order).
        urgency, score, aid = decode_cursor(cursor)
        after = tuple_(RiskQueueItem.score, RiskQueueItem.assessment_id) < tuple_(score, aid)
        rest = q.where(urgency_expr == urgency, after).order_by(*by_score)
        rows = list(session.execute(rest.limit(limit + 1)))
        if len(rows) <= limit:
            later = q.where(urgency_expr < urgency).order_by(urgency_expr.desc(), *by_score)
            rows += list(session.execute(later.limit(limit + 1 - len(rows))))
    else:
        rows = list(session.execute(q.order_by(urgency_expr.desc(), *by_score).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more and rows:
        last, last_urgency = rows[-1]
        nxt = encode_cursor(int(last_urgency), last.score, last.assessment_id)
    return QueuePage([item_dict(r) for r, _ in rows], nxt)


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
    _refuse_closed(item)
    if item.assigned_to and item.assigned_to != actor:
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} is already taken by {item.assigned_to}",
            remedy="pick another record, or ask a supervisor to re-assign it",
            details={"assessment_id": assessment_id, "assigned_to": item.assigned_to},
        )
    item.assigned_to = actor
    item.assigned_at = datetime.now(UTC)
    item.status = "assigned"
    audit(session, actor=actor, action="risk.assign", target=f"assessment:{assessment_id}")
    return item_dict(item)


def release(
    session: Session,
    assessment_id: str,
    *,
    actor: str,
    scope: str | None,
    supervisor: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Give a taken record back to the queue (open, nobody's): its taker, or a supervisor."""
    item = _item(session, assessment_id, scope)
    _refuse_closed(item)
    if item.assigned_to is None:
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} is not taken by anyone",
            remedy="take it, or leave it on the queue",
            details={"assessment_id": assessment_id},
        )
    refuse_taken(item, actor, supervisor=supervisor, doing="release it")
    previous = item.assigned_to
    item.assigned_to = None
    item.assigned_at = None
    item.status = "open"
    audit(
        session,
        actor=actor,
        action="risk.release",
        target=f"assessment:{assessment_id}",
        details={"from": previous, "reason": _reason(reason)},
    )
    return item_dict(item)


def reassign(
    session: Session,
    assessment_id: str,
    *,
    to: str,
    actor: str,
    scope: str | None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A supervisor's power (the caller holds ``risk.supervise``): give a record, taken or not, to
    ``to``, an active account that may work it (``risk.work``, and the record's office when bound)."""
    item = _item(session, assessment_id, scope)
    _refuse_closed(item)
    to = _worker(session, item, to)
    if item.assigned_to == to:
        raise WorkflowConflict(
            f"{item.subject_ref or assessment_id} is already taken by {to}",
            details={"assessment_id": assessment_id, "assigned_to": to},
        )
    previous = item.assigned_to
    item.assigned_to = to
    item.assigned_at = datetime.now(UTC)
    item.status = "assigned"
    audit(
        session,
        actor=actor,
        action="risk.reassign",
        target=f"assessment:{assessment_id}",
        details={"from": previous, "to": to, "reason": _reason(reason)},
    )
    return item_dict(item)


def _refuse_closed(item: RiskQueueItem) -> None:
    if item.status == "done":
        raise WorkflowConflict(
            f"{item.subject_ref or item.assessment_id} is already closed",
            remedy="pick an open record",
            details={"assessment_id": item.assessment_id},
        )


def _worker(session: Session, item: RiskQueueItem, username: str) -> str:
    """The account a record is re-assigned to must be able to work it: else it would sit with
    someone who cannot see it or act on it."""
    account = find_user(session, username)
    if account is None or not account_usable(account, datetime.now(UTC)):
        problem = f"there is no active account {username!r}"
    elif "risk.work" not in permissions_of(account.roles or []):
        problem = f"{username} may not work the queue (no role with risk.work)"
    elif not in_scope(item.office_code, account.office_code):
        problem = f"{username} works office {account.office_code} only, not this record's office"
    else:
        return account.username
    raise InvalidInput(
        problem,
        remedy="re-assign it to an active targeting officer or supervisor who works this record's office",
        details={"field": "to"},
    )


def _reason(reason: str | None) -> str | None:
    return (reason or "").strip() or None


def override(
    session: Session,
    assessment_id: str,
    *,
    lane: str,
    reason: str,
    actor: str,
    scope: str | None,
    supervisor: bool = False,
) -> dict[str, Any]:
    """Change a record's lane: recorded as the officer's own trigger (append-only), audited. A
    record someone else has taken is theirs to change, or a supervisor's."""
    if lane not in LANES:
        raise InvalidInput(
            f"{lane!r} is not a lane", remedy=f"use one of {', '.join(LANES)}", details={"field": "lane"}
        )
    if not reason.strip():
        raise InvalidInput(
            "an override needs a reason", remedy="say why the lane changes", details={"field": "reason"}
        )
    item = _item(session, assessment_id, scope)
    refuse_taken(item, actor, supervisor=supervisor, doing="change its lane")
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
    "ANY_STATUS",
    "OPEN_STATUSES",
    "STATUSES",
    "QueuePage",
    "assign",
    "decode_cursor",
    "encode_cursor",
    "in_scope",
    "lane_rules",
    "list_queue",
    "may_work",
    "override",
    "overrides_of",
    "queue_item",
    "reassign",
    "refuse_taken",
    "release",
]
