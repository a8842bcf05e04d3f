"""The quarantine and the batch registry, as a data engineer works with them.

Quarantined units are never edited in place: a correction is re-submitted through the same
connector as a new batch linked to the original entry, which is then marked ``resubmitted``;
an entry that should not be stored is ``discarded`` with a reason. Both keep who and when.
A re-submission is a unit of its own (its fingerprint names the entry), and the entry is closed
only when that batch committed rows: stored, quarantined again under a new open entry, or found
already stored with the same values (decision 0105).

Every path (API, CLI, web) goes through the functions here, which audit under the acting account
(decision 0099): ``quarantine.read`` for an entry shown with its raw text (content as received,
perhaps a passenger's personal data), ``quarantine.resubmit`` and ``quarantine.discard`` for the
actions, refused and failed ones included; an entry's raw text is never written to the audit trail.
A correction of one quarantined record (a CSV line, an XML declaration, an EDIFACT message) must
hold one record: new records come in through the connector, not through the quarantine.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.acquire.batch_registry import _ready, _schema_revisions, ensure_ready, list_batches
from sciti.acquire.connector import Connector, load_connector
from sciti.acquire.errors import AcquireError, ConnectorError, UnitBusy
from sciti.acquire.items import Rejected
from sciti.acquire.parts import count_records
from sciti.acquire.results import BatchResult
from sciti.acquire.runner import Runner
from sciti.acquire.units import expand
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, session_scope, utcnow
from sciti.settings import Settings

STATUSES = ("open", "resubmitted", "discarded")
# Moved to batch_registry; still importable from here.
__all__ = ["STATUSES", "_schema_revisions", "ensure_ready", "list_batches"]


class CorrectionMismatch(AcquireError):
    """A correction of one quarantined record holds another number of records: nothing is stored."""

    code = "correction_mismatch"


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
            source=q.source,
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
    """Quarantine entries, newest first: where and why, never the raw text (``show_quarantine``)."""
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


# The actor of a read made by SCITI's own code (tests, scripts) rather than for a person: every
# person-facing path (API, CLI, web) passes the account it acts as.
INTERNAL_ACTOR = "sciti"


def show_quarantine(
    settings: Settings, quarantine_id: int, *, user: str = INTERNAL_ACTOR, source: str = "internal"
) -> dict[str, Any]:
    """One entry with its raw text and every problem. The raw text is the content as received
    (a passenger feed's line holds personal data), so the read is audited (``quarantine.read``)
    as reading ``raw.*`` through SQL is: who, which entry, which source; never the text."""
    _ready(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        q = _get(s, quarantine_id)
        _audit(
            s,
            user=user,
            action="quarantine.read",
            entry=q,
            source=source,
            raw_chars=len(q.raw or ""),
        )
        return _entry(q, full=True)


def _get(s: Any, quarantine_id: int) -> QuarantineRecord:
    q = s.get(QuarantineRecord, quarantine_id)
    if q is None:
        raise NotFound(
            f"no quarantine entry {quarantine_id}", remedy="list entries with `sciti quarantine list`"
        )
    return q


def _audit(
    s: Session,
    *,
    user: str,
    action: str,
    entry: QuarantineRecord | int,
    source: str,
    outcome: str = "ok",
    **details: Any,
) -> None:
    """One audit entry about a quarantine entry: its id, batch, connector and source, and what was
    done; never its raw text nor the correction (content as received, perhaps personal data)."""
    if isinstance(entry, QuarantineRecord):
        facts: dict[str, Any] = {
            "quarantine_id": entry.id,
            "batch_id": entry.batch_id,
            "connector": entry.connector,
            "data_source": entry.source,
        }
        target = f"quarantine:{entry.id}"
    else:
        facts, target = {"quarantine_id": entry}, f"quarantine:{entry}"
    audit(
        s,
        actor=user,
        action=action,
        target=target,
        source=source,
        outcome=outcome,
        details={**facts, **{k: v for k, v in details.items() if v is not None}},
    )


def _audit_apart(settings: Settings, quarantine_id: int, **fields: Any) -> None:
    """Audit in a transaction of its own: a refused or failed action leaves its entry behind."""
    with session_scope(settings.resolved_ops_db_url) as s:
        q = s.get(QuarantineRecord, quarantine_id)
        _audit(s, entry=q if q is not None else quarantine_id, **fields)


# What a locator says an entry is: one record of a unit (a correction holds exactly one), or the
# whole unit (it did not parse: its correction is the whole corrected unit). Checked in order.
_WHOLE_XML = re.compile(r"(?P<unit>.+)#/:line \d+")  # XML that does not parse at all
_ONE_RECORD = (
    (re.compile(r"(?P<unit>.+)#/(?P<at>Declaration(?:\[\d+\])?)"), "declaration", "{unit} {at}"),
    (re.compile(r"(?P<unit>.+)#/(?P<at>Response(?:\[\d+\])?)"), "customs response", "{unit} {at}"),
    (re.compile(r"(?P<unit>.+)#(?P<at>/[^#]+?):line (?P<n>\d+)"), "declaration", "{unit} line {n}"),
    (re.compile(r"(?P<unit>.+)#msg=(?P<at>[^;]*);seg=\d+"), "message", "{unit} message {at}"),
    (re.compile(r"(?P<unit>.+):line (?P<n>\d+)"), "row", "{unit} line {n}"),
    (re.compile(r"(?P<unit>.+)#row=(?P<n>\d+)"), "row", "{unit} row {n}"),
)


def correction_scope(locator: str, raw: str | None = None) -> tuple[str, str] | None:
    """``(what, where)`` when the entry at ``locator`` is one record of its unit (``("row",
    "valid.csv line 4696")``), so a correction of it must hold one record; ``None`` for an entry
    that is the whole unit (it did not parse, or its envelope was wrong)."""
    if _WHOLE_XML.fullmatch(locator):
        return None
    for pattern, what, words in _ONE_RECORD:
        found = pattern.fullmatch(locator)
        if found is None:
            continue
        if what == "declaration" and found["at"] == "Declaration" and not raw:
            return None  # an empty or oversized file: the whole unit
        return what, words.format(**found.groupdict())
    return None


def records_in(settings: Settings, connector: Connector, data: bytes, unit: str) -> int | None:
    """How many records the runner will count as received in ``data`` sent as ``unit``: the same
    readers (a row, a declaration, a message, a rejected part each count one), nothing stored.
    ``None`` when the runner would fail the batch instead (a missing column, a wrong connector)."""
    spool = Path(settings.home) / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=spool))  # cleared if this process dies
    try:
        obj = work / "unit"
        obj.write_bytes(data)
        total = 0
        for n, part in enumerate(expand(obj, unit, connector.files, work)):
            if isinstance(part, Rejected):
                total += 1
                continue
            try:
                total += count_records(settings, connector, part[0], part[1], work / f"part-{n}")
            except ConnectorError:
                return None
            except AcquireError:
                total += 1  # the runner quarantines the part as one entry
        return total
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_correction(
    settings: Settings,
    q_id: int,
    scope: tuple[str, str] | None,
    connector: Connector,
    data: bytes,
    unit: str,
    corrected: bool,
) -> int | None:
    """The records in a correction (or the text as quarantined); refused (``CorrectionMismatch``)
    when the entry is one record and the text holds more. None (no records) is left to the batch,
    which says so."""
    if scope is None:
        return None
    held = records_in(settings, connector, data, unit)
    if held is None or held <= 1:
        return held
    what, where = scope
    details = {"quarantine_id": q_id, "expected": 1, "records": held}
    if not corrected:  # kept before decision 0124: a part of a file of several held the whole file
        raise CorrectionMismatch(
            f"quarantine entry {q_id} is one quarantined {what} ({where}), but its text is the whole "
            f"file it came in, with {held} records; nothing was stored",
            remedy=f"re-submit it with a correction that holds only this {what}",
            details=details,
        )
    raise CorrectionMismatch(
        f"quarantine entry {q_id} is one quarantined {what} ({where}); the correction holds {held} "
        "records, and nothing was stored",
        remedy=f"re-submit one {what} (the corrected one), or send new records through the connector "
        f"(sciti ingest {connector.name} FILE, or POST /api/v1/ingest/{connector.name})",
        details=details,
    )


def resubmit(
    settings: Settings,
    quarantine_id: int,
    corrected: str | None,
    user: str,
    *,
    source: str = "internal",
    bulk_ref: str | None = None,
) -> BatchResult:
    """Re-run one quarantined unit (the corrected text, or the text as quarantined) as a new batch,
    as ``user`` (the account acting, recorded as ``resolved_by`` and in the audit trail) from
    ``source`` (client address, ``cli``).

    An entry that is one record (a CSV line, an XML declaration, an EDIFACT message) takes a
    correction of one record; more is refused before anything is stored. The entry is closed
    (``resubmitted``) only when the batch committed rows; otherwise it stays open and an error says
    why and what to do. A failed batch is returned as it is (open entry). Every outcome is audited
    (``quarantine.resubmit``: ok, refused or failed) with the counts, never the text. ``bulk_ref``:
    the bulk run this is part of (decision 0117), kept in the audit entry and on the closed entry."""
    _ready(settings)
    who: dict[str, Any] = {"user": user, "action": "quarantine.resubmit", "source": source}
    if bulk_ref:
        who["resubmitted_with"] = bulk_ref
    try:
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
            name, locator, scope = q.connector, q.locator, correction_scope(q.locator, q.raw)
        connector = load_connector(settings, name)
        data = text.encode("utf-8")
        unit = resubmission_unit(locator, quarantine_id)
        _check_correction(settings, quarantine_id, scope, connector, data, unit, corrected is not None)
    except NotFound:
        raise
    except AcquireError as exc:
        _audit_apart(
            settings,
            quarantine_id,
            **who,
            outcome="refused",
            corrected=corrected is not None,
            error=exc.code,
            records=exc.details.get("records"),
        )
        raise
    result = Runner(settings).ingest_bytes(
        connector,
        data,
        unit,
        transport="resubmit",
        resubmission_of=quarantine_id,
        fingerprint=resubmission_fingerprint(quarantine_id, data),
    )
    counts: dict[str, Any] = {
        "corrected": corrected is not None,
        "resubmit_batch_id": result.batch_id or None,
        "batch_status": result.status,
        "received": result.received,
        "stored": result.stored,
        "quarantined": result.quarantined,
        "already_stored": result.already_stored,
    }
    if result.status in ("busy", "failed"):
        _audit_apart(settings, quarantine_id, **who, outcome="failed", **counts)
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
        # interrupted; its batch says whether rows came in. A record found stored already with the
        # same values came in too: nothing is missing (decision 0105).
        landed = (
            batch is not None
            and batch.status == "committed"
            and batch.resubmission_of == quarantine_id
            and batch.stored + batch.quarantined + batch.already_stored > 0
        )
        closed_by_other = None
        if landed:
            q = _get(s, quarantine_id)
            details = {**(q.details or {}), "resubmitted_with": bulk_ref} if bulk_ref else q.details
            closed_by_other = _close_resubmitted(s, q.id, user, str(result.batch_id), details)
            if closed_by_other is None:
                _audit(s, entry=q, **who, **counts)  # commits with the entry's closing, or not at all
    if closed_by_other == "":  # closed with this very batch by a twin re-submission: audited there
        return result
    if closed_by_other:
        _audit_apart(settings, quarantine_id, **who, **counts, entry_status=closed_by_other)
        raise AcquireError(
            f"quarantine entry {quarantine_id} was {closed_by_other} by another action while its "
            f"re-submission ran; the re-submission's batch {result.batch_id} committed (stored "
            f"{result.stored}, quarantined {result.quarantined}), and the entry stays {closed_by_other}",
            remedy=f"see who closed the entry (sciti quarantine show {quarantine_id}) and the batch "
            "(sciti batches)",
            details={"batch_id": result.batch_id, "status": closed_by_other},
        )
    if not landed:
        _audit_apart(settings, quarantine_id, **who, outcome="failed", **counts)
        raise AcquireError(
            f"quarantine entry {quarantine_id} stays open: the re-submitted text gave no rows "
            f"(batch {result.batch_id}: {result.status}, received {result.received})",
            remedy="re-submit the corrected unit with its header (sciti quarantine resubmit ID --file FILE), "
            "or discard the entry with a reason",
            details={"batch_id": result.batch_id, "status": result.status},
        )
    return result


def _close_resubmitted(s: Session, qid: int, user: str, batch_id: str, details: Any) -> str | None:
    """Mark the entry ``resubmitted`` by ``batch_id`` if it is still open: None when done. An action
    that closed it while the batch ran stands (its status is returned), and so does a twin
    re-submission that closed it with this very batch ("")."""
    table = cast(Table, QuarantineRecord.__table__)
    done = s.connection().execute(
        table.update()
        .where(table.c.id == qid, table.c.status == "open")
        .values(
            status="resubmitted",
            resolved_by=user,
            resolved_at=utcnow(),
            resubmit_batch_id=batch_id,
            details=details,
        )
    )
    if done.rowcount:
        return None
    status, by = s.execute(select(table.c.status, table.c.resubmit_batch_id).where(table.c.id == qid)).one()
    return "" if (status, by) == ("resubmitted", batch_id) else str(status)


def resubmission_unit(locator: str, quarantine_id: int) -> str:
    """The name a re-submitted entry's text is read under: its original unit's, so the same
    format handling applies, and the entry's id (``decl.xml#resubmit-12``)."""
    return f"{locator.split(':line ')[0].split('#')[0]}#resubmit-{quarantine_id}"


def resubmission_fingerprint(quarantine_id: int, data: bytes) -> str:
    """A re-submission's own identity: the entry and the bytes. The same bytes as the original unit
    (the whole file sent again once the connector is fixed) are then a new batch, not a
    ``duplicate`` of the batch that quarantined them."""
    digest = hashlib.sha256(f"resubmit\x1f{quarantine_id}\x1f".encode())
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def discard(
    settings: Settings, quarantine_id: int, reason: str, user: str, *, source: str = "internal"
) -> dict[str, Any]:
    """Close an entry without storing it; the reason and who decided (``user``, the acting
    account) are kept on the entry, and the decision is audited (``quarantine.discard``; the reason
    stays on the entry: it may quote the content)."""
    if not reason.strip():
        raise AcquireError("a reason is required to discard a quarantine entry", remedy="pass --reason TEXT")
    _ready(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        q = _get(s, quarantine_id)
        status = q.status
        if status != "open":
            refused = AcquireError(
                f"quarantine entry {quarantine_id} is already {status}",
                remedy="only open entries can be discarded",
            )
        else:
            q.status, q.resolved_by, q.resolved_at = "discarded", user, utcnow()
            q.details = {**(q.details or {}), "discard_reason": reason}
            _audit(s, user=user, action="quarantine.discard", entry=q, source=source)
            return _entry(q, full=True)
    _audit_apart(
        settings,
        quarantine_id,
        user=user,
        action="quarantine.discard",
        source=source,
        outcome="refused",
        error=refused.code,
        status=status,
    )
    raise refused
