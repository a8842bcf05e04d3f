"""Retention runs: a record past its period goes, with every copy SCITI derived from it.

For each rule (record kind), :func:`apply_retention`:

1. finds the rows older than the cutoff and the rows kept (one scan each, a few columns);
2. deletes the copies of the doomed records first: rows of ``risk.assessments`` (and other
   ``copies.by_record`` tables) of those record ids, their items in the officers' queue with lane
   overrides, their inspection results, and values of reference tables (``copies.by_value``) that
   no kept record still holds. Copies first, so a run that stops half-way leaves records whose
   copies are gone, never copies whose record is gone: the next run finds the same records again;
3. deletes the rows from the record kind's table.

Every lake delete is followed by expiry of every older snapshot and removal of the files only
they used, so the data is gone from time travel too (decision 0048). After all rules,
:func:`sciti.access.privacy_objects.sweep_objects` deletes the received files (object store) and
quarantine entries of batches whose rows are all gone. Each step is proved in the audit trail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, LessThan, Or
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.access.privacy_objects import ObjectSweep, sweep_objects
from sciti.access.privacy_rules import (
    STORED_AT,
    PrivacyError,
    RecordCopy,
    RetentionRule,
    ValueCopy,
    record_copies,
    retention_rules,
)
from sciti.lake import Lake, LakeError
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskOverride, RiskQueueItem
from sciti.periodic import Periodic
from sciti.settings import Settings

log = logging.getLogger("sciti.privacy")
_IN_CHUNK = 500  # ids per SQL IN list in the operational database
_ATTEMPTS = 5  # a lake delete that loses a race with a writer is tried again from the new state


@dataclass(frozen=True)
class RetentionResult:
    """The proof of one table's run, as written to the audit trail."""

    kind: str
    table: str
    cutoff: str
    rows_deleted: int
    delete_snapshot: int | None
    expired_snapshots: list[int] = field(default_factory=list)
    files_removed: int = 0
    snapshots_left: int = 0
    kept_by_refs: list[str] = field(default_factory=list)
    # Copies of the deleted records that went with them: table (lake) or ops table -> rows deleted.
    copies: dict[str, int] = field(default_factory=dict)
    copy_files_removed: int = 0


class RetentionRun(list[RetentionResult]):
    """The results of one run, one per table, and what happened to the received files."""

    objects: ObjectSweep | None = None


@dataclass
class _Deleted:
    rows: int = 0
    snapshot: int | None = None
    expired: list[int] = field(default_factory=list)
    files_removed: int = 0
    snapshots_left: int = 0
    kept_by_refs: list[str] = field(default_factory=list)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(column: str, values: Iterable[str]) -> BooleanExpression:
    """``column IN (values)``, built rather than written out: retention may name tens of thousands
    of records, and parsing such a filter as text took seconds."""
    return In(term=column, literals=sorted(values))


def _cutoff_literal(rule: RetentionRule, cutoff: datetime) -> str:
    kind_field = None if rule.date_field == STORED_AT else get_kind(rule.kind).field(rule.date_field)
    if kind_field is not None and kind_field.type == "date":
        return cutoff.date().isoformat()
    return cutoff.isoformat()


def _delete_for_real(lake: Lake, ident: str, condition: str | BooleanExpression, rows: int) -> _Deleted:
    """Delete, expire every older snapshot, remove the files only they used."""
    table = lake.table(ident)
    before_ids = {s.snapshot_id for s in table.metadata.snapshots}
    for attempt in range(_ATTEMPTS):
        try:
            snapshot = lake.delete(ident, condition)
            break
        except LakeError:  # another writer committed first (the flusher, a transport): try again
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    # Every older snapshot still holds the deleted rows: expire them all (the new one stays current)
    # and remove every file only they used.
    expired = lake.expire_snapshots(ident, timedelta(0), retain_last=1)
    table = lake.table(ident)
    left = table.metadata.snapshots
    refs = [
        name for name, ref in table.metadata.refs.items() if ref.snapshot_id in before_ids and name != "main"
    ]
    return _Deleted(
        rows=rows,
        snapshot=snapshot,
        expired=sorted(before_ids - {s.snapshot_id for s in left}),
        files_removed=expired.removed.files,
        snapshots_left=len(left),
        kept_by_refs=refs,
    )


def _norm(values: Iterable[Any]) -> set[str]:
    """Values as reference tables hold them: trimmed, upper-cased, empty ones left out."""
    out = set()
    for v in values:
        if v is not None and (text := str(v).strip()):
            out.add(text.upper())
    return out


@dataclass
class _Split:
    """The rows of a kind's table, split at the cutoff: what goes and what stays."""

    doomed: pa.Table
    kept: pa.Table

    def doomed_ids(self) -> set[str]:
        """Records to delete: a record id with a version still kept keeps its copies."""
        return set(self.doomed["record_id"].to_pylist()) - self.kept_ids()

    def kept_ids(self) -> set[str]:
        return set(self.kept["record_id"].to_pylist())


def _split(lake: Lake, rule: RetentionRule, literal: str, columns: Sequence[str]) -> _Split:
    fields = ("record_id", *columns)
    if not lake.exists(rule.table):
        empty = pa.table({name: pa.array([], pa.string()) for name in fields})
        return _Split(empty, empty)
    table = lake.table(rule.table)
    doomed = table.scan(row_filter=f"{rule.date_field} < '{literal}'", selected_fields=fields).to_arrow()
    kept_filter = f"{rule.date_field} >= '{literal}' OR {rule.date_field} IS NULL"
    kept = table.scan(row_filter=kept_filter, selected_fields=fields).to_arrow()
    return _Split(doomed, kept)


def _older(column: pa.ChunkedArray, cutoff: datetime) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type):
        return pc.less(column, pa.scalar(cutoff, column.type))
    return pc.less(column, pa.scalar(cutoff.date(), column.type))


def _record_copy(
    lake: Lake, copy: RecordCopy, kind: str, doomed: set[str], kept: set[str], cutoff: datetime
) -> tuple[_Deleted, set[str]]:
    """Rows of ``copy`` of the doomed records, and orphans made before the cutoff (their record is
    not kept: deleted earlier, or never stored). Returns what was deleted and the assessment ids."""
    if not lake.exists(copy.table):
        return _Deleted(), set()
    table = lake.table(copy.table)
    names = set(table.schema().column_names)
    extra = ("assessment_id",) if "assessment_id" in names else ()
    rows = table.scan(
        row_filter=f"{copy.kind_column} = {_quote(kind)}",
        selected_fields=(copy.record_column, copy.dated_by, *extra),
    ).to_arrow()
    if not rows.num_rows:
        return _Deleted(), set()
    ids = rows[copy.record_column]
    of_doomed = pc.is_in(ids, value_set=pa.array(sorted(doomed), pa.string()))
    not_kept = pc.invert(pc.is_in(ids, value_set=pa.array(sorted(kept), pa.string())))
    orphan = pc.and_(pc.and_(_older(rows[copy.dated_by], cutoff), not_kept), pc.invert(of_doomed))
    doomed_here = set(pc.filter(ids, of_doomed).to_pylist())
    orphans = set(pc.filter(ids, orphan).to_pylist())
    count = pc.sum(pc.or_(of_doomed, orphan).cast(pa.int64())).as_py() or 0
    if not count:
        return _Deleted(), set()
    parts: list[BooleanExpression] = []
    if doomed_here:
        parts.append(_in_list(copy.record_column, doomed_here))
    if orphans:
        parts.append(
            And(_in_list(copy.record_column, orphans), LessThan(term=copy.dated_by, value=cutoff.isoformat()))
        )
    condition = And(EqualTo(term=copy.kind_column, value=kind), parts[0] if len(parts) == 1 else Or(*parts))
    assessments = (
        set(pc.filter(rows["assessment_id"], pc.or_(of_doomed, orphan)).to_pylist()) if extra else set()
    )
    return _delete_for_real(lake, copy.table, condition, count), assessments


def _value_copy(lake: Lake, copy: ValueCopy, doomed: set[str], kept: set[str]) -> _Deleted:
    """Values of ``copy`` that only doomed records held."""
    gone = doomed - kept
    if not gone or not lake.exists(copy.table):
        return _Deleted()
    values = lake.table(copy.table).scan(selected_fields=(copy.column,)).to_arrow()[copy.column].to_pylist()
    hit = [v for v in values if v is not None and str(v).strip().upper() in gone]
    if not hit:
        return _Deleted()
    return _delete_for_real(lake, copy.table, _in_list(copy.column, set(hit)), len(hit))


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _rows(result: Any) -> int:
    """Rows a DELETE touched (a cursor result's rowcount; the generic Result type does not say)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _ops_copies(
    session: Session, kind: str, doomed: set[str], kept: set[str], cutoff: datetime, assessments: set[str]
) -> dict[str, int]:
    """The operational database's copies: queue items (with their lane overrides), inspections."""

    def goes(record_id: str, when: datetime | date) -> bool:
        if record_id in doomed:
            return True
        if record_id in kept:
            return False
        return (_aware(when) < cutoff) if isinstance(when, datetime) else (when < cutoff.date())

    items = session.execute(
        select(RiskQueueItem.assessment_id, RiskQueueItem.record_id, RiskQueueItem.assessed_at).where(
            RiskQueueItem.kind == kind
        )
    ).all()
    queue = [a for a, r, at in items if goes(r, at)]
    overridden = sorted(set(queue) | assessments)
    overrides = 0
    for chunk in _chunks(overridden):
        overrides += _rows(session.execute(delete(RiskOverride).where(RiskOverride.assessment_id.in_(chunk))))
    for chunk in _chunks(queue):
        session.execute(delete(RiskQueueItem).where(RiskQueueItem.assessment_id.in_(chunk)))
    found = session.execute(
        select(RiskInspection.inspection_id, RiskInspection.record_id, RiskInspection.inspected_on).where(
            RiskInspection.kind == kind
        )
    ).all()
    inspections = [i for i, r, on in found if goes(r, on)]
    for chunk in _chunks(inspections):
        session.execute(delete(RiskInspection).where(RiskInspection.inspection_id.in_(chunk)))
    return {"risk_queue": len(queue), "risk_overrides": overrides, "risk_inspections": len(inspections)}


def apply_retention(
    lake: Lake, rule: RetentionRule, *, now: datetime | None = None, ops_db_url: str | None = None
) -> RetentionResult:
    """Delete the rows older than the rule's period and their copies; expire and remove old files.

    ``ops_db_url``: the operational database whose copies (queue, inspections) follow the records;
    without it only the lake is touched.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=rule.days)
    literal = _cutoff_literal(rule, cutoff)
    by_record, by_value = record_copies()
    value_copies = [c for c in by_value if rule.kind in c.fields]
    value_fields = sorted({f for c in value_copies for f in c.fields[rule.kind]})
    split = _split(lake, rule, literal, value_fields)
    doomed, kept = split.doomed_ids(), split.kept_ids()

    copies: dict[str, int] = {}
    copy_files, refs = 0, []
    assessments: set[str] = set()
    for copy in by_record:
        done, ids = _record_copy(lake, copy, rule.kind, doomed, kept, cutoff)
        copies[copy.table] = done.rows
        copy_files += done.files_removed
        refs += [f"{copy.table}:{r}" for r in done.kept_by_refs]
        assessments |= ids
    if ops_db_url:
        with session_scope(ops_db_url) as session:
            copies.update(_ops_copies(session, rule.kind, doomed, kept, cutoff, assessments))
    for vcopy in value_copies:
        names = vcopy.fields[rule.kind]
        gone = _norm(v for n in names for v in split.doomed[n].to_pylist())
        held = _norm(v for n in names for v in split.kept[n].to_pylist())
        done = _value_copy(lake, vcopy, gone, held)
        copies[vcopy.table] = done.rows
        copy_files += done.files_removed
        refs += [f"{vcopy.table}:{r}" for r in done.kept_by_refs]

    rows = split.doomed.num_rows
    if not rows:
        left = len(lake.table(rule.table).metadata.snapshots) if lake.exists(rule.table) else 0
        return RetentionResult(
            rule.kind, rule.table, literal, 0, None, snapshots_left=left, kept_by_refs=refs,
            copies=copies, copy_files_removed=copy_files,
        )  # fmt: skip
    done = _delete_for_real(lake, rule.table, f"{rule.date_field} < '{literal}'", rows)
    return RetentionResult(
        kind=rule.kind,
        table=rule.table,
        cutoff=literal,
        rows_deleted=rows,
        delete_snapshot=done.snapshot,
        expired_snapshots=done.expired,
        files_removed=done.files_removed,
        snapshots_left=done.snapshots_left,
        kept_by_refs=done.kept_by_refs + refs,
        copies=copies,
        copy_files_removed=copy_files,
    )


def _proof(
    db: str, actor: str, rule: RetentionRule, source: str | None, outcome: str, details: dict[str, Any]
) -> None:
    """One table's ``retention.run`` entry, in its own transaction (a failed table's too)."""
    with session_scope(db) as session:
        audit(
            session,
            actor=actor,
            action="retention.run",
            target=f"table:{rule.table}",
            source=source,
            outcome=outcome,
            details=details,
        )


def run_retention(
    settings: Settings,
    lake: Lake,
    *,
    actor: str = "retention",
    kinds: list[str] | None = None,
    now: datetime | None = None,
    source: str | None = None,
) -> RetentionRun:
    """Apply every rule (or those of ``kinds``), then delete the received files no kept row needs.

    One audit entry per table (``retention.run``) and one for the object store
    (``retention.objects``) are the proof. This is the function a scheduler calls (the server's
    background jobs, or cron with ``sciti privacy retention run``); running it twice deletes nothing
    the second time.
    """
    now = now or datetime.now(UTC)
    db = settings.resolved_ops_db_url
    with session_scope(db) as session:
        in_force = retention_rules(settings, session)
    rules = in_force
    if kinds:
        unknown = set(kinds) - {r.kind for r in in_force}
        if unknown:
            raise PrivacyError(
                f"no retention rule for {', '.join(sorted(unknown))}",
                remedy="add one with `sciti privacy retention set KIND DAYS`",
            )
        rules = [r for r in in_force if r.kind in kinds]
    results = RetentionRun()
    for rule in rules:
        try:
            result = apply_retention(lake, rule, now=now, ops_db_url=db)
        except Exception as exc:
            failed = {"kind": rule.kind, "error": type(exc).__name__, "days": rule.days}
            _proof(db, actor, rule, source, "failed", failed)
            raise
        done = {**result.__dict__, "days": rule.days, "date_field": rule.date_field}
        _proof(db, actor, rule, source, "ok" if not result.kept_by_refs else "partial", done)
        results.append(result)
    # Every rule in force decides whether a received file is still needed, not only the ones run.
    try:
        sweep = sweep_objects(settings, lake, in_force, now=now)
    except Exception as exc:
        with session_scope(db) as session:
            audit(
                session,
                actor=actor,
                action="retention.objects",
                target="object-store",
                source=source,
                outcome="failed",
                details={"error": type(exc).__name__},
            )
        raise
    with session_scope(db) as session:
        audit(
            session,
            actor=actor,
            action="retention.objects",
            target="object-store",
            source=source,
            details=sweep.details(),
        )
    results.objects = sweep
    return results


class RetentionSchedule(Periodic):
    """Runs :func:`run_retention` every ``settings.retention_every_hours`` (the server's background jobs)."""

    def __init__(self, settings: Settings, lake: Lake, *, first_delay: float = 60.0):
        super().__init__("sciti-retention", first_delay=first_delay, what="retention run", log=log)
        self.settings, self.lake = settings, lake

    def job(self) -> None:
        run_retention(self.settings, self.lake, actor="retention-schedule", source="server")

    def period(self) -> float:
        return self.settings.retention_every_hours * 3600


__all__ = ["RetentionResult", "RetentionRun", "RetentionSchedule", "apply_retention", "run_retention"]
