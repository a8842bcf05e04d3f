"""A batch's rows into the lake, each table appended once, and its commit in the registry.

Every append is tagged with the batch id, so a recovered batch appends only to the tables whose
history does not show it yet (docs/decisions/0009). The claim is checked (and renewed) before each
append: a runner that lost its batch stops there (decision 0094). The commit writes the quarantine
entries and the batch's counts in one operational-database transaction, only while the claim holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import In
from sqlalchemy import CursorResult, delete, update

from sciti.acquire.claims import Lease
from sciti.acquire.connector import Connector
from sciti.acquire.items import Rejected
from sciti.acquire.mapping import Mapped, Target
from sciti.acquire.quarantine_rows import insert_quarantine
from sciti.acquire.stored_keys import Changes
from sciti.lake import Lake, data_folder, field_ids
from sciti.model import PARENT_COLUMN, get_kind
from sciti.ops import Batch, QuarantineRecord, session_scope, utcnow

RAW_SCHEMA = pa.schema(
    [
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("unit", pa.string()),
        pa.field("object_key", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("media_type", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
        pa.field("record_count", pa.int64()),
    ]
)
MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "wco-xml": "application/xml",
    "edifact": "application/edifact",
}


def raw_table(source: str) -> str:
    """``raw.<source>``: one row per received unit (a hyphen becomes _ so SQL needs no quoting)."""
    return f"raw.{source.replace('-', '_')}"


class LakeWriter:
    """Appends batches to lake tables, creating or evolving each table once per writer (each
    check reloads the table's metadata)."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self._ensured: set[str] = set()

    def ensure(self, ident: str, schema: pa.Schema) -> None:
        if ident not in self._ensured:
            self.lake.ensure_table(ident, schema)
            self._ensured.add(ident)

    def target(self, kind_name: str) -> Target:
        """Where a kind's Parquet files are written: its table's data folder, with its field ids."""
        kind = get_kind(kind_name)
        self.ensure(kind.ident, kind.arrow_schema())
        table = self.lake.table(kind.ident)
        return Target(data_folder(table), field_ids(table))

    def write(
        self,
        connector: Connector,
        batch: Batch,
        obj: Path,
        mapped: Mapped,
        started: datetime,
        fresh: bool,
        lease: Lease,
    ) -> dict[str, int]:
        """Append each table once for this batch; skip tables whose history already has it.
        ``fresh``: the batch was registered just now, so no table can hold it yet."""
        raw_ident = raw_table(connector.source)
        self.ensure(raw_ident, RAW_SCHEMA)
        lease.hold()
        if fresh or not self.lake.has_batch(raw_ident, batch.id):
            row = pa.table(
                {
                    "batch_id": [batch.id],
                    "unit": [batch.unit],
                    "object_key": [batch.object_key],
                    "size": [obj.stat().st_size if obj.exists() else None],
                    "media_type": [MEDIA_TYPES.get(connector.format, "application/octet-stream")],
                    "received_at": pa.array([started], pa.timestamp("us", tz="UTC")),
                    "record_count": [mapped.received],
                },
                schema=RAW_SCHEMA,
            )
            self.lake.append(raw_ident, row, batch_id=batch.id)
        tables = {get_kind(k).ident: n for k, n in mapped.written.items()}
        stale = self.stale(connector, mapped.changes, mapped.files) if mapped.changes.ids else {}
        # Children first: a batch recovered half-way still finds its parents' old versions stored,
        # and through them the old children to remove (decision 0112).
        for kind_name in sorted({*mapped.files, *stale}, key=lambda k: -_depth(k)):
            files = mapped.files.get(kind_name, [])
            ident = get_kind(kind_name).ident
            if kind_name in stale or kind_name in mapped.changes.ids:
                lease.hold()
                if fresh or not self.lake.has_batch(ident, batch.id):
                    self.replace(ident, files, stale.get(kind_name, []), batch.id)
                _remove(files)  # the upsert wrote its own copies
            elif files:
                lease.hold()
                if fresh or not self.lake.has_batch(ident, batch.id):
                    self.lake.append_files(ident, files, batch_id=batch.id)
        for kind_name, table in mapped.tables.items():
            tables[get_kind(kind_name).ident] = self.append(
                kind_name, table, batch_id=batch.id, fresh=fresh, hold=lease.hold
            )
        return tables

    def replace(self, ident: str, files: list[str], stale: list[str], batch_id: str) -> None:
        """A batch's rows of one table, replacing stored records by record id in one commit (the
        replaced rows stay in the table's history). ``stale``: rows the replaced parents' earlier
        versions brought that this version does not, removed in that same commit, so no reader
        sees the table with them gone and the new rows not yet there."""
        if files:
            rows = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
            self.lake.upsert(ident, rows, "record_id", batch_id=batch_id, remove=stale)
        elif stale:
            self.lake.delete(ident, In(term="record_id", literals=set(stale)), batch_id=batch_id)

    def stale(
        self, connector: Connector, changes: Changes, files: dict[str, list[str]]
    ) -> dict[str, list[str]]:
        """Per child kind, the stored rows that came with an earlier version of a parent this batch
        replaces (the same parent, the batch that stored that version) and that it does not bring
        again: a version's items are all of its items. Found before anything is written, parents
        first, so a removed child takes its own children with it."""
        gone = {kind: dict(ids) for kind, ids in changes.ids.items()}  # kind -> record id -> its batch
        found: dict[str, list[str]] = {}
        for kind_name in sorted(connector.kinds, key=_depth):
            kind = get_kind(kind_name)
            if kind.parent not in gone or not self.lake.exists(kind.ident):
                continue
            parents = gone[kind.parent]
            kept = {rid for f in files.get(kind_name, []) for rid in pq.read_table(f, columns=["record_id"])
                    .column("record_id").to_pylist()}  # fmt: skip
            rows = (
                self.lake.table(kind.ident)
                .scan(
                    row_filter=In(term=PARENT_COLUMN[0], literals=set(parents)),
                    selected_fields=("record_id", PARENT_COLUMN[0], "batch_id"),
                )
                .to_arrow()
                .to_pylist()
            )
            old = {
                r["record_id"]: r["batch_id"]
                for r in rows
                if r["batch_id"] == parents.get(r[PARENT_COLUMN[0]]) and r["record_id"] not in kept
            }
            if old:
                found[kind_name] = sorted(old)
                gone.setdefault(kind_name, {}).update(old)
        return found

    def append(
        self, kind_name: str, table: pa.Table, *, batch_id: str, fresh: bool, hold: Callable[[], None]
    ) -> int:
        """One append of a kind's rows for a batch, unless the table's history already has it."""
        kind = get_kind(kind_name)
        if table.num_rows:
            self.ensure(kind.ident, kind.arrow_schema())
            hold()
            if fresh or not self.lake.has_batch(kind.ident, batch_id):
                self.lake.append(kind.ident, table, batch_id=batch_id)
        return table.num_rows


def commit_batch(
    db: str, connector: Connector, batch_id: str, mapped: Mapped, tables: dict[str, int], lease: Lease
) -> None:
    """Quarantine entries and the committed status with the counts in one transaction: both or
    neither, and only while ``lease`` still holds the batch (the claim is released by the same
    UPDATE)."""
    merged: dict[str, Rejected] = {}
    for r in mapped.rejects:  # one entry per locator (unique per batch)
        if r.locator in merged:
            merged[r.locator].reason += f"; {r.reason}"
        else:
            merged[r.locator] = Rejected(r.locator, r.reason, r.field, r.raw, dict(r.details))
    with session_scope(db) as s:
        # First, so that on PostgreSQL the batch row stays locked until this transaction ends.
        done = s.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.claimed_by == lease.owner)
            .values(
                status="committed",
                error=None,
                finished_at=utcnow(),
                received=mapped.received,
                stored=mapped.stored,
                quarantined=len(mapped.rejects),
                already_stored=mapped.already_stored,
                replaced=mapped.changes.rows,
                tables=tables,
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], done).rowcount != 1:
            raise lease.lost_error()  # rolls this transaction back: nothing is marked
        s.execute(delete(QuarantineRecord).where(QuarantineRecord.batch_id == batch_id))
        insert_quarantine(s, batch_id, connector, list(merged.values()))
    mapped.rejects = list(merged.values()) if len(merged) == len(mapped.rejects) else mapped.rejects


def _depth(kind_name: str) -> int:
    """How far down its family a kind is: 0 for a kind that belongs to none."""
    parent = get_kind(kind_name).parent
    return 0 if parent is None else 1 + _depth(parent)


def _remove(files: list[str]) -> None:
    """Parquet files written for the batch but not committed (no snapshot refers to them)."""
    for f in files:
        Path(f).unlink(missing_ok=True)
