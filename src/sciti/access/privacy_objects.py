"""Received files after retention: a file goes when no row it produced is kept any more.

Every received unit is one batch in the operational batch registry (``batches``: the object key
of its bytes, the rows it stored per table, its quarantine entries). Retention deletes rows by
their own dates, so one file's rows go at different times. The file's bytes, and the quarantine
entries that quote its lines, go together with the last row of a kind under a retention rule that
the batch stored; until then they are the way back from every kept row to what was received. A
file whose rows were all quarantined (nothing was stored) goes once it was received longer ago
than the longest retention period in force.

The decision is made from the state of the lake and the registry, not from what one run
deleted, so a run that stopped half-way, or bytes received again after their deletion (the
runner stores a unit's bytes before it finds the batch is a duplicate), are handled by the next
run. The batch registry row, ``raw.<source>`` and ``raw.objects`` stay: they describe the unit
(name, size, fingerprint, counts, times), hold no record's values, and keep the rows' provenance
(source, batch, locator) answerable; the audit entry ``retention.objects`` names the keys deleted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from sciti.lake import Lake, ObjectStore, query
from sciti.ops import Batch, QuarantineRecord, session_scope
from sciti.settings import Settings

if TYPE_CHECKING:
    from sciti.access.privacy_rules import RetentionRule

_LISTED = 1000  # keys and batch ids named in one audit entry; the counts are always complete


@dataclass
class ObjectSweep:
    """What one run did to the received files; ``details()`` is the audit entry's proof."""

    batches_spent: int = 0  # batches whose rows under retention are all deleted
    rows_stored: int = 0  # rows those batches stored in tables under retention (all deleted now)
    objects_deleted: int = 0
    bytes_freed: int = 0
    quarantine_deleted: int = 0
    held: int = 0  # files kept: some of their rows are deleted, others are still inside their period
    deleted_keys: list[str] = field(default_factory=list)
    spent_batches: list[str] = field(default_factory=list)
    held_until: dict[str, str | None] = field(default_factory=dict)  # key -> first day it may go

    def details(self) -> dict[str, Any]:
        out = asdict(self)
        out["deleted_keys"] = self.deleted_keys[:_LISTED]
        out["spent_batches"] = self.spent_batches[:_LISTED]
        out["held_until"] = dict(sorted(self.held_until.items())[:_LISTED])
        return out


@dataclass
class _Unit:
    id: str
    key: str
    status: str
    tables: dict[str, int]
    stored: int
    started_at: datetime


def _remaining(
    lake: Lake, rule: RetentionRule, batch_ids: set[str]
) -> dict[str, tuple[int, date | datetime | None]]:
    """Rows a table still holds per batch, and the latest date they count from."""
    if not batch_ids or not lake.exists(rule.table):
        return {}
    rows = query(
        lake,
        f"SELECT batch_id, count(*) AS n, max({rule.date_field}) AS last FROM {rule.table} GROUP BY batch_id",
    ).to_pylist()
    return {r["batch_id"]: (r["n"], r["last"]) for r in rows if r["batch_id"] in batch_ids}


def _goes_on(last: date | datetime | None, days: int) -> date | None:
    if last is None:
        return None
    day = last.date() if isinstance(last, datetime) else last
    return day + timedelta(days=days + 1)


def sweep_objects(
    settings: Settings, lake: Lake, rules: list[RetentionRule], *, now: datetime | None = None
) -> ObjectSweep:
    """Delete the received files (and quarantine entries) of batches no kept row needs any more."""
    now = now or datetime.now(UTC)
    store = ObjectStore(settings.resolved_object_store)
    by_table = {r.table: r for r in rules}
    longest = max((r.days for r in rules), default=None)
    with session_scope(settings.resolved_ops_db_url) as s:
        found = s.execute(
            select(
                Batch.id, Batch.object_key, Batch.status, Batch.tables, Batch.stored, Batch.started_at
            ).where(Batch.object_key.is_not(None))
        ).all()
    units: dict[str, list[_Unit]] = defaultdict(list)
    for b in found:
        units[b.object_key].append(
            _Unit(b.id, b.object_key, b.status, dict(b.tables or {}), b.stored, b.started_at)
        )
    live = {key: batches for key, batches in units.items() if store.exists(key)}

    # Rows still kept, per table under retention and batch, for the batches of files still stored.
    wanted: dict[str, set[str]] = defaultdict(set)
    for batches in live.values():
        for unit in batches:
            for table, count in unit.tables.items():
                if table in by_table and count:
                    wanted[table].add(unit.id)
    remaining = {table: _remaining(lake, by_table[table], ids) for table, ids in wanted.items()}

    sweep = ObjectSweep()
    doomed: list[tuple[str, list[_Unit]]] = []
    for key, batches in sorted(live.items()):
        spent, until, deleted_some = True, None, False
        for unit in batches:
            retained = {t: n for t, n in unit.tables.items() if t in by_table and n}
            if unit.status != "committed":
                spent = False  # in progress, or failed and waiting to be retried: not ours to decide
            elif retained:
                for table, stored in retained.items():
                    left, last = remaining[table].get(unit.id, (0, None))
                    if left:
                        spent = False
                        goes = _goes_on(last, by_table[table].days)
                        until = goes if until is None or (goes is not None and goes > until) else until
                    deleted_some = deleted_some or left < stored
            elif unit.stored or longest is None:
                spent = False  # holds only rows of kinds without personal data
            else:  # nothing was stored, all quarantined: goes after the longest period in force
                received = unit.started_at if unit.started_at.tzinfo else unit.started_at.replace(tzinfo=UTC)
                spent = spent and received < now - timedelta(days=longest)
        if spent:
            doomed.append((key, batches))
        elif deleted_some:
            sweep.held += 1
            sweep.held_until[key] = until.isoformat() if until else None

    for key, batches in doomed:
        ids = [u.id for u in batches]
        with session_scope(settings.resolved_ops_db_url) as s:  # quarantine first: a crash keeps the file
            done = s.execute(delete(QuarantineRecord).where(QuarantineRecord.batch_id.in_(ids)))
            sweep.quarantine_deleted += int(getattr(done, "rowcount", 0) or 0)
        sweep.bytes_freed += store.delete(key)
        sweep.objects_deleted += 1
        sweep.deleted_keys.append(key)
        sweep.spent_batches += ids
        sweep.batches_spent += len(ids)
        sweep.rows_stored += sum(n for u in batches for t, n in u.tables.items() if t in by_table)
    return sweep


__all__ = ["ObjectSweep", "sweep_objects"]
