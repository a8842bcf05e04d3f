"""The quarantine and the batch registry, as a data engineer works with them.

Quarantined units are never edited in place: a correction is re-submitted through the same
connector as a new batch linked to the original entry, which is then marked ``resubmitted``;
an entry that should not be stored is ``discarded`` with a reason. Both keep who and when.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from sciti.acquire.connector import load_connector
from sciti.acquire.errors import AcquireError
from sciti.acquire.runner import BatchResult, Runner
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope, utcnow
from sciti.settings import Settings

STATUSES = ("open", "resubmitted", "discarded")


def _ready(settings: Settings) -> None:
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_ops_db_url)


def _entry(q: QuarantineRecord, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": q.id,
        "batch_id": q.batch_id,
        "connector": q.connector,
        "locator": q.locator,
        "field": q.field,
        "reason": q.reason,
        "status": q.status,
        "created_at": q.created_at.isoformat() if q.created_at else None,
    }
    if full:
        out.update(
            raw=q.raw,
            details=q.details,
            resolved_by=q.resolved_by,
            resubmit_batch_id=q.resubmit_batch_id,
            resolved_at=q.resolved_at.isoformat() if q.resolved_at else None,
        )
    return out


def list_quarantine(
    settings: Settings, *, connector: str | None = None, status: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Quarantine entries, newest first."""
    if status and status not in STATUSES:
        raise AcquireError(
            f"unknown quarantine status {status!r}", remedy=f"use one of {', '.join(STATUSES)}"
        )
    _ready(settings)
    query = select(QuarantineRecord).order_by(QuarantineRecord.id.desc()).limit(limit)
    if connector:
        query = query.where(QuarantineRecord.connector == connector)
    if status:
        query = query.where(QuarantineRecord.status == status)
    with session_scope(settings.resolved_ops_db_url) as s:
        return [_entry(q) for q in s.scalars(query)]


def show_quarantine(settings: Settings, quarantine_id: int) -> dict[str, Any]:
    """One entry with its raw text and every problem."""
    _ready(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        return _entry(_get(s, quarantine_id), full=True)


def _get(s: Any, quarantine_id: int) -> QuarantineRecord:
    q = s.get(QuarantineRecord, quarantine_id)
    if q is None:
        raise NotFound(
            f"no quarantine entry {quarantine_id}", remedy="list entries with `sciti quarantine list`"
        )
    return q


def resubmit(settings: Settings, quarantine_id: int, corrected: str | None, user: str) -> BatchResult:
    """Re-run one quarantined unit (the corrected text, or the text as quarantined) as a new batch."""
    _ready(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        q = _get(s, quarantine_id)
        if q.status != "open":
            raise AcquireError(
                f"quarantine entry {quarantine_id} is already {q.status}",
                remedy="only open entries can be re-submitted",
            )
        text = corrected if corrected is not None else q.raw
        if not text:
            raise AcquireError(
                f"quarantine entry {quarantine_id} has no text to re-submit",
                remedy="pass the corrected unit (sciti quarantine resubmit ID --file FILE)",
            )
        name, locator = q.connector, q.locator
    connector = load_connector(settings, name)
    # Keep the original unit's extension so the same format handling applies.
    base = locator.split(":line ")[0].split("#")[0]
    result = Runner(settings).ingest_bytes(
        connector,
        text.encode("utf-8"),
        f"{base}#resubmit-{quarantine_id}",
        transport="resubmit",
        resubmission_of=quarantine_id,
    )
    if result.status in ("committed", "duplicate"):
        with session_scope(settings.resolved_ops_db_url) as s:
            q = _get(s, quarantine_id)
            q.status, q.resolved_by, q.resolved_at = "resubmitted", user, utcnow()
            q.resubmit_batch_id = result.batch_id or None
    return result


def discard(settings: Settings, quarantine_id: int, reason: str, user: str) -> dict[str, Any]:
    """Close an entry without storing it; the reason and who decided are kept."""
    if not reason.strip():
        raise AcquireError("a reason is required to discard a quarantine entry", remedy="pass --reason TEXT")
    _ready(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        q = _get(s, quarantine_id)
        if q.status != "open":
            raise AcquireError(
                f"quarantine entry {quarantine_id} is already {q.status}",
                remedy="only open entries can be discarded",
            )
        q.status, q.resolved_by, q.resolved_at = "discarded", user, utcnow()
        q.details = {**(q.details or {}), "discard_reason": reason}
        return _entry(q, full=True)


def list_batches(
    settings: Settings, *, connector: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Batches, newest first, with their reconciled counts."""
    _ready(settings)
    query = select(Batch).order_by(Batch.started_at.desc()).limit(limit)
    if connector:
        query = query.where(Batch.connector == connector)
    with session_scope(settings.resolved_ops_db_url) as s:
        return [
            {
                "batch_id": b.id,
                "connector": b.connector,
                "unit": b.unit,
                "transport": b.transport,
                "status": b.status,
                "received": b.received,
                "stored": b.stored,
                "quarantined": b.quarantined,
                "reconciled": b.received == b.stored + b.quarantined,
                "tables": b.tables,
                "resubmission_of": b.resubmission_of,
                "error": b.error,
                "started_at": b.started_at.isoformat() if b.started_at else None,
                "finished_at": b.finished_at.isoformat() if b.finished_at else None,
            }
            for b in s.scalars(query)
        ]
