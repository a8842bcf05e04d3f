"""Writes beyond append: upsert by key, delete by filter, replace everything, compaction.

Each operation is one Iceberg commit (a single catalog update), so readers see the table either
before or after it, never half-way. Rows are never changed in place: files holding replaced or
deleted rows are rewritten without them (copy-on-write) and the old files stay reachable from
earlier snapshots, which is what makes time travel and ``has_batch`` work after any of these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import BooleanExpression
from pyiceberg.expressions.parser import parse as parse_filter
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import (
    RemoveSnapshotsUpdate,
    RemoveStatisticsUpdate,
    _apply_table_update,
    _TableMetadataUpdateContext,
)
from pyiceberg.table.update.snapshot import _OverwriteFiles
from pyparsing import ParseException

from sciti.lake.errors import LakeError
from sciti.lake.files import conform, read_tasks, snapshot_files, write_data_files
from sciti.lake.history import OPERATION_PROPERTY
from sciti.lake.layout import is_sorted, sort_columns

_KEY_SEPARATOR = "\x1f"
# Compaction and expiry, when another writer commits first, re-check and commit again this often.
COMMIT_ATTEMPTS = 5
_HOUR_MS = 3_600_000


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
    table: Table,
    data: pa.Table,
    key: Sequence[str],
    props: dict[str, str],
    *,
    update: bool,
    remove: Sequence[str] = (),
) -> UpsertResult:
    """Replace rows whose key is in ``data`` (or leave them, when ``update`` is False) and insert the
    rest. ``remove``: more key values (one-column key) whose rows go without a replacement, in the
    same commit."""
    if remove and (not update or len(key) != 1):
        raise LakeError(
            "rows to remove need an updating upsert by one key column", remedy="delete them apart"
        )
    data = conform(data, table)
    missing = [k for k in key if k not in data.column_names]
    if missing:
        raise LakeError(
            f"upsert key {missing} is not a column of the table", remedy="name existing columns as key"
        )
    if data.num_rows == 0 and not remove:
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
    gone = pa.array(sorted(set(remove)), pa.string())
    for task in files.tasks:
        keys = _key_strings(read_tasks(table, [task], key_schema), key)
        hit = pc.is_in(keys, value_set=incoming)
        hits = pc.sum(hit).as_py() or 0
        matched += hits
        if len(gone):
            hit = pc.or_(hit, pc.is_in(keys, value_set=gone))
        if pc.any(hit).as_py():
            affected.append((task, hit))
    if not update:
        found = pc.is_in(incoming, value_set=_all_keys(table, affected, key_schema, key))
        new_rows = data.filter(pc.invert(found))
        snapshot_id = append(table, new_rows, props)
        return UpsertResult(new_rows.num_rows, 0, snapshot_id)
    if not affected:
        return UpsertResult(data.num_rows, 0, append(table, data, props) if data.num_rows else None)

    removed: list[DataFile] = []
    added: list[DataFile] = []
    for task, hit in affected:
        rows = read_tasks(table, [task])
        removed.append(task.file)
        added.extend(write_data_files(table, rows.filter(pc.invert(hit))))
    if data.num_rows:
        added.extend(write_data_files(table, data))
    snapshot_id = commit_files(table, removed, added, props)
    return UpsertResult(data.num_rows - matched, matched, snapshot_id)


def delete(table: Table, filter_expr: str | BooleanExpression, props: dict[str, str]) -> int | None:
    """Delete the rows matching a pyiceberg filter (``"office_code = 'KRPUS' AND version < 2"``), or
    an expression built with ``pyiceberg.expressions``: a filter naming thousands of ids is built,
    not parsed (the text parser takes seconds for a few thousand values)."""
    before = table.current_snapshot()
    if isinstance(filter_expr, BooleanExpression):
        expr = filter_expr
    else:
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

    removed = [t for group in groups for t in group]
    added: list[DataFile] = []
    committed = False
    try:
        for group in groups:
            # One group at a time: memory stays around one target file's rows.
            added.extend(write_data_files(table, read_tasks(table, group), max_rows=target_file_rows))
        snapshot_id = _commit_compaction(table, removed, added, {**props, OPERATION_PROPERTY: "compact"})
        committed = True
    finally:
        if not committed:  # nothing refers to the files written: remove them rather than leave orphans
            _delete_files(table, added)
    # Counted from the new snapshot: files other writers added meanwhile are in the table too.
    snap = table.current_snapshot()
    after = snap.summary.additional_properties.get("total-data-files") if snap and snap.summary else None
    files_after = int(after) if after is not None else len(files.tasks) - len(removed) + len(added)
    return CompactResult(len(files.tasks), files_after, len(removed), snapshot_id)


def _commit_compaction(
    table: Table, removed: list[FileScanTask], added: list[DataFile], props: dict[str, str]
) -> int | None:
    """Commit compaction's file swap, on top of whatever other writers committed meanwhile.

    Rewriting takes a while and real-time feeds commit every few seconds from other processes, so
    the first commit often loses the race. The swap stays valid as long as every file it removes is
    still live, with the same delete files, in the table's new current snapshot: rows appended
    meanwhile live in other files and are kept. Otherwise (someone compacted, deleted or updated
    those rows) it gives up rather than resurrect or duplicate rows.
    """
    files = [t.file for t in removed]
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return _swap_files(table, files, added, props, replace=True)
        except (CommitFailedException, ValidationException) as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise _conflict(exc) from None
            # In place, so the caller's cached table object follows the catalog too.
            table.refresh()
            if not _still_live(table, removed):
                raise _conflict(exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _still_live(table: Table, removed: list[FileScanTask]) -> bool:
    """Whether every file in ``removed`` is a data file of the current snapshot with the same deletes."""
    current = {t.file.file_path: t for t in snapshot_files(table, table.current_snapshot()).tasks}
    for task in removed:
        now = current.get(task.file.file_path)
        if now is None or _delete_paths(now) != _delete_paths(task):
            return False
    return True


def _delete_paths(task: FileScanTask) -> set[str]:
    return {d.file_path for d in task.delete_files}


def _delete_files(table: Table, files: list[DataFile]) -> None:
    for f in files:
        with contextlib.suppress(OSError):  # already gone, or the store refused: only an orphan
            table.io.delete(f.file_path)


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


def snapshots_to_expire(
    snapshots: Iterable[tuple[int, int]],
    *,
    cutoff_ms: int,
    keep_last: int,
    keep_all_after_ms: int | None = None,
    protected: Collection[int] = (),
) -> list[int]:
    """Which snapshots to expire, given ``(timestamp_ms, snapshot_id)`` pairs in commit order.

    - older than ``cutoff_ms``: expired;
    - from ``cutoff_ms`` up to ``keep_all_after_ms``: only the newest of each UTC hour is kept
      (time travel to any moment lands at most an hour early); None means no thinning;
    - from ``keep_all_after_ms`` on: all kept (the cutoff wins when it is the later of the two);
    - whatever their age: the newest ``keep_last`` and every id in ``protected``.

    Returns snapshot ids oldest first.
    """
    ordered = sorted(snapshots, key=lambda s: s[0])  # stable: equal times keep commit order
    keep = set(protected)
    if keep_last > 0:
        keep.update(sid for _, sid in ordered[-keep_last:])
    thin_before = cutoff_ms if keep_all_after_ms is None else max(cutoff_ms, keep_all_after_ms)
    hour_heads: dict[int, int] = {}
    for ts, sid in ordered:
        if cutoff_ms <= ts < thin_before:
            hour_heads[ts // _HOUR_MS] = sid  # later ones overwrite: the hour's newest stays
    keep.update(hour_heads.values())
    return [sid for ts, sid in ordered if ts < thin_before and sid not in keep]


def expire(
    table: Table,
    cutoff: datetime,
    keep_last: int,
    *,
    keep_all_after: datetime | None = None,
    protected: Collection[int] = (),
) -> list[Snapshot]:
    """Expire snapshots as :func:`snapshots_to_expire` selects them; branch and tag heads (the
    current snapshot among them) are always kept, like ``protected``.

    Returns the snapshots expired (as they were). Their files stay on disk: sciti.lake.reclaim
    removes the ones no snapshot kept still uses.
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        meta = table.metadata
        ordered = sorted(meta.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
        heads = {ref.snapshot_id for ref in meta.refs.values()}
        doomed = snapshots_to_expire(
            ((s.timestamp_ms, s.snapshot_id) for s in ordered),
            cutoff_ms=_millis(cutoff),
            keep_last=keep_last,
            keep_all_after_ms=None if keep_all_after is None else _millis(keep_all_after),
            protected=heads | set(protected),
        )
        if not doomed:
            return []
        try:
            # Our transaction: pyiceberg's would rebuild the metadata twice per expired snapshot.
            LakeTransaction(table, autocommit=True)._apply((_RemoveSnapshots(snapshot_ids=doomed),))
            gone = set(doomed)
            return [s for s in ordered if s.snapshot_id in gone]
        except CommitFailedException as exc:
            # A real-time writer committed meanwhile (pyiceberg does not retry metadata-only
            # commits): choose again from the table's new state.
            if attempt == COMMIT_ATTEMPTS:
                raise _conflict(exc) from None
            table.refresh()
    raise AssertionError("unreachable")  # pragma: no cover


class _RemoveSnapshots(RemoveSnapshotsUpdate):
    """pyiceberg's remove-snapshots update (same wire form), applied in time linear in the snapshots.

    pyiceberg 0.12 checks each id against every snapshot, twice (ExpireSnapshots.by_ids, then the
    update itself): thinning a week of 5-second commits (~120,000 snapshots) for the first time
    would take about half an hour per application, twice per commit, and a real-time writer
    commits in between, so it could never land. Ids already gone (another upkeep expired them)
    are skipped rather than failing the commit, and so are branch and tag heads.
    """


@_apply_table_update.register(_RemoveSnapshots)
def _apply_remove_snapshots(
    update: _RemoveSnapshots, base: TableMetadata, context: _TableMetadataUpdateContext
) -> TableMetadata:
    # Branch and tag heads as the catalog sees them now (a tag made meanwhile) are never removed.
    doomed = set(update.snapshot_ids) - {r.snapshot_id for r in base.refs.values()}
    snapshots = [
        s.model_copy(update={"parent_snapshot_id": None}) if s.parent_snapshot_id in doomed else s
        for s in base.snapshots
        if s.snapshot_id not in doomed
    ]
    snapshot_log = [e for e in base.snapshot_log if e.snapshot_id not in doomed]
    new = base
    for sid in {f.snapshot_id for f in base.statistics} & doomed:  # as pyiceberg: stats go too
        new = _apply_table_update(RemoveStatisticsUpdate(snapshot_id=sid), new, context)
    context.add_update(update)
    return new.model_copy(update={"snapshots": snapshots, "snapshot_log": snapshot_log})


def _millis(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


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
        return _swap_files(table, removed, added, props, replace=replace)
    except (CommitFailedException, ValidationException) as exc:
        raise _conflict(exc) from None


def _swap_files(
    table: Table, removed: list[DataFile], added: list[DataFile], props: dict[str, str], *, replace: bool
) -> int | None:
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
    # The commit leaves ``table`` holding the new metadata: no reload needed.
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None


def append(table: Table, data: pa.Table, props: dict[str, str]) -> int | None:
    """Append ``data`` (already conformed) in one snapshot; returns its id (None for no rows)."""
    if data.num_rows == 0:
        return None
    if sort_columns(table) is not None:  # pyiceberg's append neither sorts nor records the order
        return append_written(table, write_data_files(table, data), props)
    try:
        with transaction(table) as tx:
            tx.append(data, snapshot_properties=props)
    except (CommitFailedException, ValidationException) as exc:
        raise _conflict(exc) from None
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None


def append_written(table: Table, files: Sequence[DataFile], props: dict[str, str]) -> int | None:
    """Commit data files already written for ``table`` (``write_data_files``) as one append."""
    if not files:
        return None
    try:
        with transaction(table) as tx:
            producer = tx.update_snapshot(snapshot_properties=props).fast_append()
            with producer:
                for f in files:
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
