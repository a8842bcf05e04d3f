"""Discard many quarantine entries at once, by a selection a data engineer names (decision 0110).

After a bad feed, hundreds or thousands of entries share one cause; closing them one by one is not
workable. A selection (connector, data source, batch, words of the quarantine reason, received
before/after, explicit ids) is closed with the rules of the single discard: open entries only, a
reason required and kept on every entry with who and when. The selection is taken as of the call
(entries that arrive meanwhile are left alone) and walked in chunks by id, so memory stays flat;
one call closes at most ``BULK_MAX`` entries and says how many remain. Everything one call closes
commits in one transaction with ONE audit entry (the selection, the counts, the actor; never the raw
text nor the reason, which may quote it), whose id every closed entry keeps, or nothing commits.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.acquire.batch_registry import _ready
from sciti.acquire.errors import AcquireError
from sciti.errors import NotFound
from sciti.ops import QuarantineRecord, session_scope, utcnow
from sciti.settings import Settings

BULK_MAX = 50_000  # entries one call may close: a call must finish well within a request's time
CHUNK = 1_000  # entries read and closed per statement
MAX_IDS = BULK_MAX
MAX_REASON = 2_000  # as the single discard
# Longest text of each selection field (the columns' own widths; words of a reason: a phrase).
MAX_TEXT = {"connector": 100, "source": 100, "batch_id": 40, "reason_contains": 200}


@dataclass(frozen=True)
class Selection:
    """Which quarantine entries a bulk action takes: every named field must match (AND).

    ``reason_contains`` is a part of the quarantine reason, as written (case matters);
    ``received_after``/``received_before`` bound when the entry was quarantined; ``everything``
    is the explicit consent to an empty selection (every open entry)."""

    connector: str | None = None
    source: str | None = None
    batch_id: str | None = None
    reason_contains: str | None = None
    received_after: datetime | None = None
    received_before: datetime | None = None
    ids: tuple[int, ...] = ()
    everything: bool = False

    def named(self) -> dict[str, Any]:
        """The fields given, as plain values (what the audit entry records)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value in (None, (), [], False, ""):
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        if self.ids:
            out["ids"] = sorted(set(self.ids))
        return out


def selection_problems(sel: Selection) -> list[tuple[str, str]]:
    """``(field, problem)`` for each thing wrong with a selection; empty when it can be used."""
    problems: list[tuple[str, str]] = []
    for name, longest in MAX_TEXT.items():
        value = getattr(sel, name)
        if value is not None and not value.strip():
            problems.append((name, "is blank: leave it out, or name a value"))
        elif value is not None and len(value) > longest:
            problems.append((name, f"is longer than {longest} characters"))
    if len(sel.ids) > MAX_IDS:
        problems.append(("ids", f"names more than {MAX_IDS:,} entries: split the list"))
    if any(i < 1 for i in sel.ids):
        problems.append(("ids", "quarantine entry ids are positive whole numbers"))
    after, before = _utc(sel.received_after), _utc(sel.received_before)
    if after is not None and before is not None and after >= before:
        problems.append(("received_before", "must be later than received_after"))
    rest = {k: v for k, v in sel.named().items() if k != "everything"}
    if not rest and not sel.everything:
        problems.append(
            (
                "all",
                "the selection is empty: name a connector, source, batch, reason words, a received "
                "date or ids (or say all, to take every open entry)",
            )
        )
    return problems


def check_selection(sel: Selection) -> None:
    """Refuse a selection that cannot be used, naming every problem."""
    problems = selection_problems(sel)
    if problems:
        said = "; ".join(f"{name} {problem}" for name, problem in problems)
        raise AcquireError(
            f"the quarantine selection cannot be used: {said}",
            remedy="correct the selection; preview it first with a dry run",
            details={"fields": [{"field": n, "problem": p} for n, p in problems]},
        )


def _utc(value: datetime | None) -> datetime | None:
    """A time as UTC (a time without a zone is taken as UTC, as entries are stored)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _like(words: str) -> str:
    """A LIKE pattern for words taken literally (``%`` and ``_`` in them are not wildcards)."""
    return "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def selection_where(sel: Selection) -> list[ColumnElement[bool]]:
    """The selection as conditions on the quarantine table (no status condition)."""
    q = QuarantineRecord
    where: list[ColumnElement[bool]] = []
    for column, value in ((q.connector, sel.connector), (q.source, sel.source), (q.batch_id, sel.batch_id)):
        if value:
            where.append(column == value.strip())
    if sel.reason_contains:
        where.append(q.reason.like(_like(sel.reason_contains), escape="\\"))
    if sel.received_after is not None:
        where.append(q.created_at >= _utc(sel.received_after))
    if sel.received_before is not None:
        where.append(q.created_at < _utc(sel.received_before))
    if sel.ids:
        where.append(q.id.in_(sorted(set(sel.ids))))
    return where


@dataclass
class BulkResult:
    """What a bulk discard did (or, in a dry run, would do).

    ``matched``: open entries the selection took at the start; ``closed``: those this call closed
    (in a dry run: would close); ``skipped``: those another action closed before this one reached
    them; ``remaining``: those still open past the cap (call again); ``already_closed``: entries
    of the selection that were closed before. matched = closed + skipped + remaining."""

    matched: int = 0
    closed: int = 0
    skipped: int = 0
    remaining: int = 0
    already_closed: int = 0
    dry_run: bool = False
    limit: int = BULK_MAX
    audit_ref: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)


def _count(s: Session, where: list[ColumnElement[bool]], *more: ColumnElement[bool]) -> int:
    return s.scalar(select(func.count()).select_from(QuarantineRecord).where(*where, *more)) or 0


def _missing_ids(s: Session, ids: tuple[int, ...]) -> list[int]:
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        found.update(s.scalars(select(QuarantineRecord.id).where(QuarantineRecord.id.in_(part))))
    return [i for i in wanted if i not in found]


def refuse_missing(s: Session, sel: Selection, undone: str) -> None:
    """``NotFound`` naming the ids of ``sel`` that are no quarantine entry: nothing was ``undone``."""
    missing = _missing_ids(s, sel.ids) if sel.ids else []
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise NotFound(
            f"no quarantine entry {shown} ({len(missing)} of the ids named)",
            remedy=f"list entries with `sciti quarantine list`; nothing was {undone}",
            details={"missing": missing[:100]},
        )


def discard_selection(
    settings: Settings,
    sel: Selection,
    reason: str,
    user: str,
    *,
    source: str = "internal",
    dry_run: bool = False,
    limit: int = BULK_MAX,
) -> BulkResult:
    """Discard the open entries ``sel`` takes (at most ``limit``), with ``reason`` kept on each, as
    ``user`` (the acting account) from ``source`` (client address, ``cli``). A dry run counts what
    would be closed and changes nothing (nor is it audited: it reads no content)."""
    check_selection(sel)
    if not reason.strip():
        raise AcquireError("a reason is required to discard quarantine entries", remedy="pass --reason TEXT")
    if len(reason) > MAX_REASON:
        raise AcquireError(f"the reason is longer than {MAX_REASON} characters", remedy="say it shorter")
    if not 1 <= limit <= BULK_MAX:
        raise AcquireError(f"the limit must be 1 to {BULK_MAX:,}", remedy="call again for the rest")
    reason = reason.strip()
    _ready(settings)
    where = selection_where(sel)
    is_open = QuarantineRecord.status == "open"
    with session_scope(settings.resolved_ops_db_url) as s:
        refuse_missing(s, sel, "discarded")
        # The selection as of now: entries that arrive during the call are not taken.
        top = s.scalar(select(func.max(QuarantineRecord.id)).where(*where, is_open))
        out = BulkResult(dry_run=dry_run, limit=limit, selection=sel.named())
        out.audit_ref = None if dry_run else uuid.uuid4().hex
        out.already_closed = _count(s, where, QuarantineRecord.status != "open")
        if top is None:
            return out if dry_run else _finish(s, out, user, source, reason)
        upto = QuarantineRecord.id <= top
        out.matched = _count(s, where, is_open, upto)
        if dry_run:
            out.closed = min(out.matched, limit)
            out.remaining = out.matched - out.closed
            return out
        out.closed = _close(s, where, upto, limit, reason, user, str(out.audit_ref))
        out.remaining = _count(s, where, is_open, upto)
        out.skipped = max(out.matched - out.closed - out.remaining, 0)
        return _finish(s, out, user, source, reason)


def _close(
    s: Session,
    where: list[ColumnElement[bool]],
    upto: ColumnElement[bool],
    limit: int,
    reason: str,
    user: str,
    ref: str,
) -> int:
    """Close open entries chunk by chunk (ids ascending), each as the single discard does; the
    number closed. An entry another action closed first is not touched (``status = 'open'`` is
    checked again on write; on PostgreSQL the chunk's rows are locked as they are read)."""
    q = QuarantineRecord
    table = cast(Table, q.__table__)
    write = (
        table.update()
        .where(and_(table.c.id == bindparam("qid"), table.c.status == "open"))
        .values(status="discarded", resolved_by=user, resolved_at=bindparam("at"), details=bindparam("det"))
    )
    closed, last, now = 0, 0, utcnow()
    while closed < limit:
        rows = s.execute(
            select(q.id, q.details)
            .where(*where, upto, q.status == "open", q.id > last)
            .order_by(q.id)
            .limit(min(CHUNK, limit - closed))
            .with_for_update()
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        params = [
            {"qid": i, "at": now, "det": {**(d or {}), "discard_reason": reason, "discarded_with": ref}}
            for i, d in rows
        ]
        closed += s.connection().execute(write, params).rowcount
    return closed


def _finish(s: Session, out: BulkResult, user: str, source: str, reason: str) -> BulkResult:
    """The one audit entry of a bulk discard, in the transaction that closed the entries."""
    counts = {k: getattr(out, k) for k in ("matched", "closed", "skipped", "remaining", "already_closed")}
    audit(
        s,
        actor=user,
        action="quarantine.discard",
        target=f"quarantine:selection:{out.audit_ref}",
        source=source,
        details={
            "bulk": True,
            "ref": out.audit_ref,
            "selection": out.selection,
            "limit": out.limit,
            "reason_chars": len(reason),
            **counts,
        },
    )
    return out
