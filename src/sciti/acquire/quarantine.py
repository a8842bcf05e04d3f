"""The quarantine and the batch registry, as a data engineer works with them.

Quarantined units are never edited in place: a correction is re-submitted through the same
connector as a new batch linked to the original entry, which is then marked ``resubmitted``;
an entry that should not be stored is ``discarded`` with a reason. Both keep who and when.
A re-submission is a unit of its own (its fingerprint names the entry), and the entry is closed
only when that batch committed rows: stored, or quarantined again under a new open entry.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import make_url

from sciti.acquire.connector import load_connector
from sciti.acquire.errors import AcquireError, NotInitialised, UnitBusy
from sciti.acquire.runner import BatchResult, Runner
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, get_engine, session_scope, utcnow
from sciti.ops.db import alembic_config
from sciti.settings import Settings

STATUSES = ("open", "resubmitted", "discarded")


def _ready(settings: Settings) -> None:
    """Stop unless the operational database holds this version's schema. Only `sciti init` makes
    or upgrades it: a command that only reads the registry must not set up a database that was
    never initialised (an unreachable one still fails on connecting, with its own line)."""
    url = settings.resolved_ops_db_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    remedy = "run `sciti init`, or check that ops_db_url (SCITI_OPS_DB_URL) names the instance's database"
    file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
    if file is not None and str(file) != ":memory:" and not file.exists():  # asking must not create it
        raise NotInitialised(
            f"the operational database at {shown} is not initialised (there is no file {file.name})",
            remedy=remedy,
        )
    with get_engine(url).connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    needed, known = _schema_revisions()
    if current == needed:
        return
    if not current:
        raise NotInitialised(
            f"the operational database at {shown} is not initialised (it has no SCITI schema)", remedy=remedy
        )
    have, want = ", ".join(sorted(current)), ", ".join(sorted(needed))
    if not current <= known:  # made by a newer SCITI: `sciti init` of this one cannot help
        raise NotInitialised(
            f"the operational database at {shown} has a schema this version of SCITI does not know "
            f"(revision {have}; this version's newest is {want})",
            remedy="run the version of SCITI that made it",
        )
    raise NotInitialised(
        f"the operational database at {shown} is not initialised for this version of SCITI (its "
        f"schema is at revision {have}; this version needs {want})",
        remedy="run `sciti init` with this version to bring the schema up to date",
    )


@cache
def _schema_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This version's schema: the revisions it ends at, and every revision it knows (read from its
    migrations, not from a database)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


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
    """Re-run one quarantined unit (the corrected text, or the text as quarantined) as a new batch.

    The entry is closed (``resubmitted``) only when that batch committed rows; otherwise it stays
    open and an error says why and what to do. A failed batch is returned as it is (open entry)."""
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
    data = text.encode("utf-8")
    result = Runner(settings).ingest_bytes(
        connector,
        data,
        f"{base}#resubmit-{quarantine_id}",
        transport="resubmit",
        resubmission_of=quarantine_id,
        fingerprint=resubmission_fingerprint(quarantine_id, data),
    )
    if result.status == "busy":
        raise UnitBusy(
            f"quarantine entry {quarantine_id} stays open: {result.error}",
            remedy="re-submit it again later",
            details={"batch_id": result.batch_id},
        )
    if result.status == "failed":
        return result
    with session_scope(settings.resolved_ops_db_url) as s:
        batch = s.get(Batch, result.batch_id) if result.batch_id else None
        # ``duplicate``: this very re-submission committed before, and closing the entry was
        # interrupted; its batch says whether rows came in.
        landed = (
            batch is not None
            and batch.status == "committed"
            and batch.resubmission_of == quarantine_id
            and batch.stored + batch.quarantined > 0
        )
        if landed:
            q = _get(s, quarantine_id)
            q.status, q.resolved_by, q.resolved_at = "resubmitted", user, utcnow()
            q.resubmit_batch_id = result.batch_id
    if not landed:
        raise AcquireError(
            f"quarantine entry {quarantine_id} stays open: the re-submitted text gave no rows "
            f"(batch {result.batch_id}: {result.status}, received {result.received})",
            remedy="re-submit the corrected unit with its header (sciti quarantine resubmit ID --file FILE), "
            "or discard the entry with a reason",
            details={"batch_id": result.batch_id, "status": result.status},
        )
    return result


def resubmission_fingerprint(quarantine_id: int, data: bytes) -> str:
    """A re-submission's own identity: the entry and the bytes. The same bytes as the original unit
    (the whole file sent again once the connector is fixed) are then a new batch, not a
    ``duplicate`` of the batch that quarantined them."""
    digest = hashlib.sha256(f"resubmit\x1f{quarantine_id}\x1f".encode())
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


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
