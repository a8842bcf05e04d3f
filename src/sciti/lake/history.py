"""What the lake can tell about itself: tables with sizes, and each table's snapshot history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

# Snapshot summary properties SCITI writes: the acquisition batch a commit belongs to, and what a
# commit did when Iceberg's operation name is not specific enough (compaction).
BATCH_PROPERTY = "sciti.batch-id"
OPERATION_PROPERTY = "sciti.operation"


@dataclass(frozen=True)
class SnapshotInfo:
    """One commit of a table, as its snapshot summary records it."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str  # append, overwrite, delete, replace; "compact" for our compactions
    batch_id: str | None
    added_rows: int
    deleted_rows: int
    total_rows: int
    total_files: int


@dataclass(frozen=True)
class TableInfo:
    ident: str
    snapshot_id: int | None
    rows: int
    files: int
    updated_at: datetime | None


def snapshot_info(snap: Snapshot) -> SnapshotInfo:
    props = snap.summary.additional_properties if snap.summary else {}
    operation = snap.summary.operation.value if snap.summary else "unknown"
    return SnapshotInfo(
        snapshot_id=snap.snapshot_id,
        parent_id=snap.parent_snapshot_id,
        committed_at=millis_to_datetime(snap.timestamp_ms),
        operation=props.get(OPERATION_PROPERTY, operation),
        batch_id=props.get(BATCH_PROPERTY),
        added_rows=int(props.get("added-records", 0)),
        deleted_rows=int(props.get("deleted-records", 0)),
        total_rows=int(props.get("total-records", 0)),
        total_files=int(props.get("total-data-files", 0)),
    )


def history(table: Table) -> list[SnapshotInfo]:
    """The table's commits on its main line, oldest first."""
    infos = []
    for entry in table.history():
        snap = table.snapshot_by_id(entry.snapshot_id)
        if snap is not None:  # a log entry may outlive its snapshot's metadata (older pyiceberg)
            infos.append(snapshot_info(snap))
    return infos


def has_batch(table: Table, batch_id: str) -> bool:
    """Whether a commit for ``batch_id`` reached ``table``: snapshot summaries, then the data.

    Summaries answer for every snapshot kept. Once snapshots have been expired, an older batch is
    found by its rows instead (every raw/std row carries ``batch_id``); rows a batch wrote and a
    later delete removed cannot be told apart from a batch that never arrived.
    """
    meta = table.metadata
    for snap in reversed(meta.snapshots):  # newest first: recovery asks about recent batches
        if snap.summary is not None and snap.summary.additional_properties.get(BATCH_PROPERTY) == batch_id:
            return True
    if not _lost_snapshots(table) or "batch_id" not in {f.name for f in table.schema().fields}:
        return False
    # pyiceberg's own __init__ takes (term, literal); mypy sees only the pydantic fields.
    only_batch = EqualTo("batch_id", batch_id)  # type: ignore[call-arg, arg-type]
    scan = table.scan(row_filter=only_batch, selected_fields=("batch_id",), limit=1)
    return scan.to_arrow().num_rows > 0


def _lost_snapshots(table: Table) -> bool:
    """Whether snapshots were expired from the table (or it cannot be told, on format v1).

    In format v2 every commit takes the next sequence number, so fewer snapshots than the last
    sequence number means some were removed.
    """
    meta = table.metadata
    if meta.format_version < 2:
        return bool(meta.snapshots)
    return len(meta.snapshots) < getattr(meta, "last_sequence_number", 0)


def snapshot_at(table: Table, ts: datetime | int) -> int | None:
    """Id of the snapshot current at ``ts`` (the latest at or before it), None if the table was empty then.

    ``ts`` is a datetime (naive = UTC) or milliseconds since the epoch. Expiry drops snapshots from
    the log too, so after hourly thinning (Lake.maintain) this is the latest snapshot kept at or
    before ``ts``: the table as it was at most an hour earlier. None also when ``ts`` is older
    than every snapshot kept.
    """
    if isinstance(ts, datetime):
        aware = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
        ts = int(aware.timestamp() * 1000)
    for entry in reversed(table.history()):
        # Skips a log entry whose snapshot is gone, where pyiceberg's lookup would answer None.
        if entry.timestamp_ms <= ts and (snap := table.snapshot_by_id(entry.snapshot_id)) is not None:
            return snap.snapshot_id
    return None


def table_info(ident: str, table: Table) -> TableInfo:
    snap = table.current_snapshot()
    if snap is None:
        return TableInfo(ident, None, 0, 0, None)
    info = snapshot_info(snap)
    return TableInfo(ident, snap.snapshot_id, info.total_rows, info.total_files, info.committed_at)


def millis_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
