"""Writes beyond append: upsert by key, delete by filter, replace everything, compaction.

Each operation is one Iceberg commit (a single catalog update), so readers see the table either
before or after it, never half-way. Rows are never changed in place: files holding replaced or
deleted rows are rewritten without them (copy-on-write) and the old files stay reachable from
earlier snapshots, which is what makes time travel and ``has_batch`` work after any of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions.parser import parse as parse_filter
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import ExpireSnapshots, _OverwriteFiles
from pyparsing import ParseException

from sciti.lake.errors import LakeError
from sciti.lake.files import conform, read_tasks, snapshot_files, write_data_files
from sciti.lake.history import OPERATION_PROPERTY
from sciti.lake.layout import is_sorted, sort_columns

_KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    snapshot_id: int | None


@dataclass(frozen=True)
class CompactResult:
    files_before: int
    files_after: int
    files_rewritten: int
    snapshot_id: int | None


def upsert(
    table: Table, data: pa.Table, key: Sequence[str], props: dict[str, str], *, update: bool
) -> UpsertResult:
    """Replace rows whose key is in ``data`` (or leave them, when ``update`` is False) and insert the rest."""
    data = conform(data, table)
    missing = [k for k in key if k not in data.column_names]
    if missing:
        raise LakeError(
            f"upsert key {missing} is not a column of the table", remedy="name existing columns as key"
        )
    if data.num_rows == 0:
        return UpsertResult(0, 0, None)
    incoming = _key_strings(data, key)
    if incoming.null_count:
        raise LakeError("rows to upsert have an empty key", remedy=f"fill {', '.join(key)} on every row")
    if pc.count_distinct(incoming).as_py() != len(incoming):
        raise LakeError(
            "rows to upsert repeat a key",
            remedy=f"keep one row per {', '.join(key)} (the newest) before upserting",
        )

    files = snapshot_files(table, table.current_snapshot())
    key_schema = files.schema.select(*key)
    affected: list[tuple[FileScanTask, pa.Table]] = []
    matched = 0
    for task in files.tasks:
        keys = _key_strings(read_tasks(table, [task], key_schema), key)
        hit = pc.is_in(keys, value_set=incoming)
        hits = pc.sum(hit).as_py() or 0
        if hits:
            matched += hits
            affected.append((task, hit))
    if not update:
        found = pc.is_in(incoming, value_set=_all_keys(table, affected, key_schema, key))
        new_rows = data.filter(pc.invert(found))
        snapshot_id = append(table, new_rows, props)
        return UpsertResult(new_rows.num_rows, 0, snapshot_id)
    if not affected:
        return UpsertResult(data.num_rows, 0, append(table, data, props))

    removed: list[DataFile] = []
    added: list[DataFile] = []
    for task, hit in affected:
        rows = read_tasks(table, [task])
        removed.append(task.file)
        added.extend(write_data_files(table, rows.filter(pc.invert(hit))))
    added.extend(write_data_files(table, data))
    snapshot_id = commit_files(table, removed, added, props)
    return UpsertResult(data.num_rows - matched, matched, snapshot_id)


def delete(table: Table, filter_expr: str, props: dict[str, str]) -> int | None:
    """Delete the rows matching a pyiceberg filter (``"office_code = 'KRPUS' AND version < 2"``)."""
    before = table.current_snapshot()
    try:
        expr = parse_filter(filter_expr)
    except ParseException as exc:
        raise LakeError(
            f"cannot delete with filter {filter_expr!r}: not understood at character {exc.col}",
            remedy="write the filter like `column = 'value' AND other > 3`",
        ) from None
    try:
        with transaction(table) as tx:
            tx.delete(expr, snapshot_properties=props)
    except (ValueError, TypeError) as exc:
        raise LakeError(
            f"cannot delete with filter {filter_expr!r}: {exc}",
            remedy="write the filter like `column = 'value' AND other > 3` with existing column names",
        ) from None
    except (CommitFailedException, ValidationException) as exc:
        raise _conflict(exc) from None
    after = table.current_snapshot()
    if after is None or (before is not None and after.snapshot_id == before.snapshot_id):
        return None
    return after.snapshot_id


def replace_all(table: Table, data: pa.Table, props: dict[str, str]) -> int | None:
    """Replace every row of the table with ``data`` in one snapshot.

    Not pyiceberg's ``overwrite``: that commits a delete snapshot then an append snapshot, and time
    travel to the moment between them would show an empty table.
    """
    data = conform(data, table)
    current = snapshot_files(table, table.current_snapshot())
    if not current.tasks:
        return append(table, data, props) if data.num_rows else current.snapshot_id
    added = write_data_files(table, data)
    return commit_files(table, [t.file for t in current.tasks], added, props)


def compact(table: Table, target_file_rows: int, props: dict[str, str]) -> CompactResult:
    """Rewrite small or unsorted data files into files of up to ``target_file_rows`` rows, rows unchanged.

    A file counts as small below 80 % of the target; a file not written in the table's sort order
    (ingest files, files from before the order was set) is rewritten whatever its size, once.
    These are packed greedily into groups of at most ``target_file_rows`` rows; each group of two
    or more files (or one file with delete files to apply, or not yet sorted) becomes new files,
    sorted by the table's lookup key with bounded row groups (sciti.lake.layout). One ``replace``
    snapshot commits it all.
    """
    if target_file_rows < 1:
        raise LakeError("target_file_rows must be at least 1", remedy="use the target_file_rows setting")
    files = snapshot_files(table, table.current_snapshot())
    small = [
        t
        for t in files.tasks
        if t.file.record_count < 0.8 * target_file_rows or t.delete_files or not is_sorted(table, t.file)
    ]
    groups: list[list[FileScanTask]] = []
    rows = target_file_rows + 1
    for task in small:
        if rows + task.file.record_count > target_file_rows:
            groups.append([])
            rows = 0
        groups[-1].append(task)
        rows += task.file.record_count
    groups = [g for g in groups if len(g) > 1 or g[0].delete_files or not is_sorted(table, g[0].file)]
    if not groups:
        n = len(files.tasks)
        return CompactResult(n, n, 0, files.snapshot_id)

    removed: list[DataFile] = []
    added: list[DataFile] = []
    for group in groups:
        # One group at a time: memory stays around one target file's rows.
        removed.extend(t.file for t in group)
        added.extend(write_data_files(table, read_tasks(table, group), max_rows=target_file_rows))
    snapshot_id = commit_files(table, removed, added, {**props, OPERATION_PROPERTY: "compact"}, replace=True)
    return CompactResult(
        len(files.tasks), len(files.tasks) - len(removed) + len(added), len(removed), snapshot_id
    )


class LakeTransaction(Transaction):
    """A pyiceberg transaction that computes its staged metadata once per change, not once per read.

    pyiceberg 0.12 rebuilds (and deep-copies) the whole table metadata every time a snapshot
    producer reads ``table_metadata`` (15-20 times per append), so a commit cost grows with every
    snapshot kept. The result only changes when the base metadata or the staged updates change
    (both are replaced, never mutated: ``_updates`` is a tuple), so it is cached on their identity;
    with nothing staged it is the table's metadata itself. Table metadata is a frozen pydantic
    model that pyiceberg replaces rather than changes, so sharing it between reads is safe.
    """

    def __init__(self, table: Table, autocommit: bool = False):
        super().__init__(table, autocommit)
        self._cached: tuple[object, object, TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        if not updates:  # nothing staged yet: the table's own (frozen) metadata is the answer
            return base
        cached = self._cached
        if cached is None or cached[0] is not base or cached[1] is not updates:
            cached = (base, updates, super().table_metadata)
            self._cached = cached
        return cached[2]


def transaction(table: Table) -> LakeTransaction:
    """A transaction on ``table``; commit with ``with transaction(t) as tx: ...``."""
    return LakeTransaction(table)


def expire(table: Table, cutoff: datetime, keep_last: int) -> int:
    """Expire snapshots committed before ``cutoff``, except the newest ``keep_last`` and the current one.

    Returns how many were expired. Data files stay on disk (orphan clean-up is separate).
    """
    snaps = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    kept = {s.snapshot_id for s in snaps[-keep_last:]} if keep_last > 0 else set()
    cutoff_ms = int(cutoff.timestamp() * 1000)
    doomed = [
        s.snapshot_id
        for s in snaps
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in kept and s.snapshot_id not in protected
    ]
    if doomed:
        # Our transaction: pyiceberg's would rebuild the metadata twice per expired snapshot.
        ExpireSnapshots(LakeTransaction(table, autocommit=True)).by_ids(doomed).commit()
    return len(doomed)


class _ReplaceFiles(_OverwriteFiles):
    """An overwrite whose snapshot says ``replace``: files moved, table data unchanged (Iceberg spec).

    pyiceberg computes summaries only for append/overwrite/delete, so compute as an overwrite and
    relabel; engines reading incrementally (Spark, Flink) then skip compactions as they should.
    """

    def _summary(self, snapshot_properties: dict[str, str] | None = None) -> Summary:
        summary = super()._summary(snapshot_properties or {})
        return Summary(Operation.REPLACE, **summary.additional_properties)


def commit_files(
    table: Table,
    removed: list[DataFile],
    added: list[DataFile],
    props: dict[str, str],
    *,
    replace: bool = False,
) -> int | None:
    """Swap data files in one snapshot (one catalog commit)."""
    try:
        with transaction(table) as tx:
            if replace:
                producer: _OverwriteFiles = _ReplaceFiles(
                    operation=Operation.OVERWRITE, transaction=tx, io=table.io, snapshot_properties=props
                )
            else:
                producer = tx.update_snapshot(snapshot_properties=props).overwrite()
            with producer:
                for f in removed:
                    producer.delete_data_file(f)
                for f in added:
                    producer.append_data_file(f)
    except (CommitFailedException, ValidationException) as exc:
        raise _conflict(exc) from None
    # The commit leaves ``table`` holding the new metadata: no reload needed.
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None


def append(table: Table, data: pa.Table, props: dict[str, str]) -> int | None:
    """Append ``data`` (already conformed) in one snapshot; returns its id (None for no rows)."""
    if data.num_rows == 0:
        return None
    try:
        with transaction(table) as tx:
            if sort_columns(table) is None:
                tx.append(data, snapshot_properties=props)
            else:  # pyiceberg's append neither sorts nor records the order: write the files ourselves
                added = write_data_files(table, data)
                with tx.update_snapshot(snapshot_properties=props).fast_append() as producer:
                    for f in added:
                        producer.append_data_file(f)
    except (CommitFailedException, ValidationException) as exc:
        raise _conflict(exc) from None
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None


def _all_keys(
    table: Table, affected: list[tuple[FileScanTask, pa.Array]], key_schema, key: Sequence[str]
) -> pa.Array:
    if not affected:
        return pa.array([], pa.string())
    return _key_strings(read_tasks(table, [t for t, _ in affected], key_schema), key)


def _key_strings(rows: pa.Table, key: Sequence[str]) -> pa.Array:
    """One comparable string per row for a (possibly composite) key."""
    cols = [pc.cast(rows.column(k), pa.string()) for k in key]
    joined = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, _KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _conflict(exc: Exception) -> LakeError:
    return LakeError(
        f"another writer changed the table at the same time: {exc}",
        remedy="run the operation again; it starts from the table's new state",
    )
