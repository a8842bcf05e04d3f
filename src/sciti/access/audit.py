"""The audit trail: who did what, when, why and from where — append-only and hash-chained.

Every package records through ``audit(...)`` in the same database session as the action it
records, so the entry commits (or rolls back) with it.

Action names are dotted verbs, e.g. ``login``, ``login.failed``, ``query``, ``export``,
``unmask``, ``rule.create``, ``rule.approve``, ``model.train``, ``model.promote``,
``user.create``, ``secret.read``, ``retention.run``.

Each entry's hash is SHA-256 over a canonical encoding of its fields and the previous entry's hash
(see :func:`entry_hash`), so changing, deleting or reordering an entry breaks the chain at that
point. Appends are ordered by locking the one-row ``audit_head`` table (an UPDATE takes a row lock
on PostgreSQL and the write lock on SQLite), so concurrent writers never fork the chain. The head
also remembers the newest entry, which catches deletion of the tail; anchoring the head hash to a
file kept elsewhere (:func:`anchor`) catches a rewrite of the whole chain.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sciti.ops.policy_tables import AuditEntry, AuditHead

GENESIS = "0" * 64
_HEAD_ID = 1


def _iso(at: datetime) -> str:
    """One spelling of a time for hashing: UTC, microseconds, 'Z' (SQLite returns naive UTC)."""
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(at: datetime) -> datetime:
    """Times without a zone are UTC (what the trail stores)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:  # within hours of year 1 or 9999: the ends of time are as good
        return (datetime.min if at.year < 5000 else datetime.max).replace(tzinfo=UTC)


def canonical_details(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    purpose: str | None,
    source: str | None,
    outcome: str,
    details: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON array of the entry's fields, in a fixed order."""
    fields = [seq, _iso(at), actor, action, target, purpose, source, outcome, details, prev_hash]
    encoded = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _hash_of(row: AuditEntry) -> str:
    return entry_hash(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        purpose=row.purpose,
        source=row.source,
        outcome=row.outcome,
        details=row.details,
        prev_hash=row.prev_hash,
    )


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked until the caller's transaction ends (created on first use)."""
    for _ in range(3):
        locked = session.execute(
            update(AuditHead).where(AuditHead.id == _HEAD_ID).values(seq=AuditHead.seq)
        ).rowcount  # type: ignore[attr-defined]
        if locked:
            head = session.execute(
                select(AuditHead).where(AuditHead.id == _HEAD_ID).execution_options(populate_existing=True)
            ).scalar_one()
            return head
        try:
            with session.begin_nested():
                session.add(AuditHead(id=_HEAD_ID, seq=0, hash=GENESIS))
        except IntegrityError:
            continue  # another writer created it first: lock theirs
    raise RuntimeError("the audit head row could not be locked")


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    purpose: str | None = None,
    source: str | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit trail (within ``session``'s transaction).

    actor: username or service name; target: what was acted on ("rule:R-12", "table:std.passengers");
    purpose: the stated purpose, where one is required; source: client address or "cli".
    Details must never contain secrets or unmasked personal data.
    """
    append(
        session,
        actor=actor,
        action=action,
        target=target,
        purpose=purpose,
        source=source,
        outcome=outcome,
        details=details,
    )


def append(session: Session, **fields: Any) -> AuditEntry:
    """:func:`audit`, returning the stored entry (its ``seq`` and ``hash``)."""
    head = _locked_head(session)
    at = datetime.now(UTC)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=at,
        actor=str(fields["actor"]),
        action=str(fields["action"]),
        target=str(fields.get("target") or ""),
        purpose=fields.get("purpose"),
        source=fields.get("source"),
        outcome=str(fields.get("outcome") or "ok"),
        details=canonical_details(fields.get("details")),
        prev_hash=head.hash,
    )
    entry.hash = _hash_of(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditRecord:
    """One entry as read back, details decoded."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    purpose: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _record(row: AuditEntry) -> AuditRecord:
    at = row.at.replace(tzinfo=UTC) if row.at.tzinfo is None else row.at
    try:
        details = json.loads(row.details or "{}")
    except ValueError:
        details = {"unreadable": row.details}
    return AuditRecord(
        row.seq,
        at,
        row.actor,
        row.action,
        row.target,
        row.purpose,
        row.source,
        row.outcome,
        details,
        row.prev_hash,
        row.hash,
    )


def list_entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRecord]:
    """Entries, newest first. ``action`` matches exactly or as a prefix ending in '.' ("rule." )."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(
            AuditEntry.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= _utc(since))
    if until is not None:
        stmt = stmt.where(AuditEntry.at < _utc(until))
    stmt = stmt.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
    return [_record(r) for r in session.scalars(stmt)]


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: ``ok``, or the first bad entry and what is wrong with it."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def _rows(session: Session) -> Iterator[AuditEntry]:
    yield from session.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000))


def verify(session: Session, anchor_file: Path | None = None) -> Verification:
    """Recompute the chain from the first entry; report the first entry that does not check out."""
    head = session.get(AuditHead, _HEAD_ID)
    expected, prev, count = 1, GENESIS, 0
    anchors = _read_anchors(anchor_file) if anchor_file is not None else {}
    seen_hashes: dict[int, str] = {}

    def bad(seq: int, problem: str) -> Verification:
        return Verification(
            False, count, head.seq if head else 0, head.hash if head else GENESIS, seq, problem
        )

    for row in _rows(session):
        if row.seq != expected:
            if row.seq < expected:
                return bad(row.seq, f"entry {row.seq} appears twice or out of order")
            return bad(expected, f"entry {expected} is missing (deleted); the next entry is {row.seq}")
        if _hash_of(row) != row.hash:
            return bad(row.seq, f"entry {row.seq} does not match its hash: it was modified or moved")
        if row.prev_hash != prev:
            return bad(
                row.seq,
                f"entry {row.seq} does not follow entry {row.seq - 1}: its prev_hash differs "
                f"(entry {row.seq - 1} was changed, or entries were removed, inserted or reordered)",
            )
        if row.seq in anchors:
            seen_hashes[row.seq] = row.hash
        prev, expected, count = row.hash, expected + 1, count + 1
    last = expected - 1
    if head is None:
        if count:
            return Verification(False, count, 0, GENESIS, 1, "the audit head row is missing")
    elif head.seq > last:
        return bad(
            last + 1, f"entries {last + 1} to {head.seq} are missing (the newest entries were deleted)"
        )
    elif head.seq < last:
        return bad(head.seq + 1, f"the head names entry {head.seq} but the log goes on to {last}")
    elif head.hash != prev:
        return bad(last, f"the head hash does not match entry {last}")
    for seq, anchored in sorted(anchors.items()):
        if seen_hashes.get(seq) != anchored:
            return bad(
                seq, f"entry {seq} does not match the hash anchored in {anchor_file}: the log was rewritten"
            )
    return Verification(True, count, last, prev)


def anchor(session: Session, path: Path) -> tuple[int, str]:
    """Append the current head (seq, hash, time) to ``path``, a file to keep outside the database."""
    head = session.get(AuditHead, _HEAD_ID)
    seq, digest = (head.seq, head.hash) if head else (0, GENESIS)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"seq": seq, "hash": digest, "at": _iso(datetime.now(UTC))}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line)
    return seq, digest


def _read_anchors(path: Path) -> dict[int, str]:
    anchors: dict[int, str] = {}
    if not path.exists():
        return anchors
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            if int(item["seq"]) > 0:
                anchors[int(item["seq"])] = str(item["hash"])
    return anchors


__all__ = [
    "GENESIS",
    "AuditRecord",
    "Verification",
    "anchor",
    "append",
    "audit",
    "canonical_details",
    "entry_hash",
    "list_entries",
    "verify",
]
