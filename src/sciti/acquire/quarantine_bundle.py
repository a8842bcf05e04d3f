"""Re-submitted quarantine entries of one original unit, together in one batch (decision 0120).

A bulk re-submission (decision 0117) ran one batch per entry, and every batch is a lake commit
whose cost grows with the snapshots before it: thousands of entries took hours. Entries that are
one record each (a CSV line, an XML declaration, an EDIFACT message) and were quarantined from the
same unit now go as one bundle: a zip whose every member is one entry's text as quarantined, named
as its single re-submission would be (``kcs.csv#resubmit-12``), read by the connector like any
other unit. One batch, one commit per table; each entry is closed by that batch, with its own
audit entry, as if re-submitted alone.

An entry is closed when its member gave records: the runner counts what each part received, and a
committed batch accounts for every record it received (stored, quarantined again, or already
stored). A whole unit that did not parse goes alone, through the single re-submission; so does
every entry of a bundle whose batch failed (one member the connector cannot read must not keep the
others open), and the single re-submission says what is wrong with each.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from sciti.acquire.connector import Connector, load_connector
from sciti.acquire.errors import AcquireError, UnitBusy
from sciti.acquire.quarantine import (
    _audit,
    _close_resubmitted,
    correction_scope,
    records_in,
    resubmission_unit,
)
from sciti.acquire.results import BatchResult
from sciti.acquire.runner import Runner
from sciti.acquire.units import BUNDLE
from sciti.ops import Batch, QuarantineRecord, session_scope
from sciti.settings import Settings

BUNDLE_MAX = 200  # entries in one bundle batch
BUNDLE_BYTES = 32 << 20  # text in one bundle batch
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same entries make the same bytes (and batch)


@dataclass
class Entry:
    """An open entry as the bundle needs it."""

    id: int
    connector: str
    batch_id: str
    locator: str
    raw: str


@dataclass
class BundleOutcome:
    """What one bundle did to its entries: ``closed`` by its batch (or by a twin run of the same
    bundle), ``stayed`` open (id, error code, words), ``alone``: to re-submit one by one (the batch
    failed); the rest were closed by another action first."""

    result: BatchResult
    closed: list[int] = field(default_factory=list)
    stayed: list[tuple[int, str, str]] = field(default_factory=list)
    alone: list[int] = field(default_factory=list)


def plan(settings: Settings, ids: list[int]) -> Iterator[list[int]]:
    """``ids`` (ascending) as they are to be re-submitted, in the same order: runs of entries of
    one original unit that can go as one bundle, and single entries (a list of one) for the single
    re-submission: a whole unit, an entry without text or whose connector cannot be loaded, one
    not open any more (it says why, and audits each)."""
    q = QuarantineRecord
    with session_scope(settings.resolved_ops_db_url) as s:
        # The texts' lengths, not the texts: a chunk of whole units may be gigabytes.
        found = s.execute(
            select(q.id, q.connector, q.batch_id, q.locator, func.coalesce(func.length(q.raw), 0)).where(
                q.id.in_(ids), q.status == "open"
            )
        ).all()
    entries = {i: (connector, batch, locator, size) for i, connector, batch, locator, size in found}
    readable = _readable(settings, {e[0] for e in entries.values()})
    run: list[int] = []
    size = 0
    for i in ids:
        e = entries.get(i)
        if (
            e is None
            or e[0] not in readable
            or not e[3]
            or correction_scope(e[2], "text") is None  # it has text: its length is not 0
        ):
            if run:
                yield run
                run, size = [], 0
            yield [i]
            continue
        first = entries[run[0]] if run else None
        if first is not None and (first[:2] != e[:2] or len(run) >= BUNDLE_MAX or size + e[3] > BUNDLE_BYTES):
            yield run
            run, size = [], 0
        run.append(i)
        size += e[3]
    if run:
        yield run


def _readable(settings: Settings, names: set[str]) -> set[str]:
    """The connectors of ``names`` that load."""
    found = set()
    for name in names:
        try:
            load_connector(settings, name)
        except AcquireError:
            continue
        found.add(name)
    return found


def resubmit_bundle(
    settings: Settings, ids: list[int], user: str, *, source: str, bulk_ref: str
) -> BundleOutcome:
    """Re-submit the open entries ``ids`` (one original unit, one record each: ``plan``) as one
    batch, as ``user`` from ``source``, and close each one whose record came in."""
    with session_scope(settings.resolved_ops_db_url) as s:
        found = s.scalars(
            select(QuarantineRecord).where(QuarantineRecord.id.in_(ids), QuarantineRecord.status == "open")
        ).all()
        entries = sorted(
            (Entry(q.id, q.connector, q.batch_id, q.locator, q.raw or "") for q in found), key=lambda e: e.id
        )
    if not entries:  # all closed meanwhile
        return BundleOutcome(BatchResult("", "", "duplicate"))
    connector = load_connector(settings, entries[0].connector)
    data = bundle_bytes(entries)
    unit = f"resubmit-{entries[0].id}-{entries[-1].id}.zip"
    result = Runner(settings).ingest_bytes(
        connector, data, unit, transport=BUNDLE, fingerprint=bundle_fingerprint([e.id for e in entries], data)
    )
    out = BundleOutcome(result)
    if result.status == "failed":
        out.alone = [e.id for e in entries]
        return out
    who: dict[str, Any] = {"user": user, "action": "quarantine.resubmit", "source": source}
    counts: dict[str, Any] = {
        "corrected": False,
        "resubmit_batch_id": result.batch_id or None,
        "batch_status": result.status,
        "entries_in_batch": len(entries),
        "received": result.received,
        "stored": result.stored,
        "quarantined": result.quarantined,
        "already_stored": result.already_stored,
        "resubmitted_with": bulk_ref,
    }
    got = {e.id: _received(settings, connector, result, unit, e) for e in entries}  # before writing
    with session_scope(settings.resolved_ops_db_url) as s:
        batch = s.get(Batch, result.batch_id) if result.batch_id else None
        committed = batch is not None and batch.status == "committed"
        for e in entries:
            q = s.get(QuarantineRecord, e.id)
            if q is None:
                continue
            if not committed or not got[e.id]:
                _audit(s, entry=q, **who, outcome="failed", **counts)
                if q.status == "open":
                    out.stayed.append((e.id, *_why_open(result)))
                continue
            details = {**(q.details or {}), "resubmitted_with": bulk_ref}
            closed_by_other = _close_resubmitted(s, e.id, user, str(result.batch_id), details)
            if closed_by_other is None:
                _audit(s, entry=q, **who, **counts)
                out.closed.append(e.id)
            elif closed_by_other == "":  # a twin run of this very bundle closed it: audited there
                out.closed.append(e.id)
            else:  # a discard made while the batch ran stands (as for a single re-submission)
                _audit(s, entry=q, **who, **counts, entry_status=closed_by_other)
    return out


def _received(settings: Settings, connector: Connector, result: BatchResult, unit: str, e: Entry) -> int:
    """The records the entry's member gave: as the batch counted them, or, for a bundle found
    committed before (a run interrupted before closing its entries), counted again the same way."""
    member = resubmission_unit(e.locator, e.id)
    if result.status == "committed":
        return result.parts.get(f"{unit}!{member}", 0)
    if result.status != "duplicate":  # busy: nothing came in
        return 0
    return records_in(settings, connector, e.raw.encode("utf-8"), member) or 0


def _why_open(result: BatchResult) -> tuple[str, str]:
    """The error code and words for the entries of a bundle whose batch brought nothing in."""
    if result.status == "busy":
        return UnitBusy.code, f"stays open: {result.error}"
    return AcquireError.code, (
        f"stays open: the re-submitted text gave no rows (batch {result.batch_id}: {result.status})"
    )


def bundle_bytes(entries: list[Entry]) -> bytes:
    """The zip of the entries' texts as quarantined, each named as its single re-submission."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for e in entries:
            info = zipfile.ZipInfo(resubmission_unit(e.locator, e.id), date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, e.raw.encode("utf-8"))
    return sink.getvalue()


def bundle_fingerprint(ids: list[int], data: bytes) -> str:
    """A bundle's identity: its entries and bytes. Run again (a run interrupted after the batch
    committed), it is the same batch, found committed, and its entries are closed by it."""
    digest = hashlib.sha256(f"resubmit-bundle\x1f{','.join(map(str, ids))}\x1f".encode())
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()
