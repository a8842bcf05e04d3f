"""Reading and writing an Iceberg table's data files directly.

The lake's own operations (upsert, compaction, queries) work at the level of data files: which
files a snapshot holds, which of them carry delete files, how to read a file with its deletes
applied and projected to a schema, and how to write new files the table will accept. pyiceberg has
all of that, partly behind private names; this module is the one place that touches them, so a
pyiceberg upgrade is checked here.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from cachetools import LRUCache
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, PyArrowFileIO, _dataframe_to_data_files
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

from sciti.lake.errors import LakeError
from sciti.lake.layout import mark_sorted, sort_rows

# Tables whose files were written without Iceberg field ids carry this property; their columns are
# matched by name, which only pyiceberg's reader does.
NAME_MAPPING_PROPERTY = "schema.name-mapping.default"


@dataclass(frozen=True)
class SnapshotFiles:
    """The data files one snapshot of a table holds, and what reading them needs."""

    snapshot_id: int | None
    schema: Schema
    tasks: tuple[FileScanTask, ...]

    @property
    def paths(self) -> list[str]:
        return [t.file.file_path for t in self.tasks]

    @property
    def has_deletes(self) -> bool:
        return any(t.delete_files for t in self.tasks)

    @property
    def row_count(self) -> int:
        return sum(t.file.record_count for t in self.tasks)


def snapshot_schema(table: Table, snapshot: Snapshot | None) -> Schema:
    """Schema a snapshot was written with (Iceberg time travel reads a snapshot with its own schema)."""
    if snapshot is not None and snapshot.schema_id is not None:
        schema = table.schemas().get(snapshot.schema_id)
        if schema is not None:
            return schema
    return table.schema()


def snapshot_files(table: Table, snapshot: Snapshot | None) -> SnapshotFiles:
    """Plan the data files of ``snapshot`` (None: the table has no snapshot yet, so no files).

    A snapshot without delete files is planned from its manifests, each read once per process
    (``_live_files``): every append adds a manifest, and pyiceberg's planner reads them all
    again at every call, so a table fed in small batches was planned slower with every commit
    until upkeep compacted it. A snapshot with delete files goes through pyiceberg's planner,
    which matches each delete file to its data files."""
    if snapshot is None:
        return SnapshotFiles(None, table.schema(), ())
    tasks = _without_deletes(table.io, snapshot)
    if tasks is None:
        tasks = tuple(table.scan(snapshot_id=snapshot.snapshot_id).plan_files())
    return SnapshotFiles(snapshot.snapshot_id, snapshot_schema(table, snapshot), tasks)


def _without_deletes(io: FileIO, snapshot: Snapshot) -> tuple[FileScanTask, ...] | None:
    """The snapshot's files from its manifests, or None when it holds delete files (in manifests
    of their own, or, as some writers leave them, among the data files)."""
    manifests = snapshot.manifests(io)
    if any(m.content != ManifestContent.DATA for m in manifests):
        return None
    found = [f for m in manifests for f in _live_files(io, m)]
    if any(f.content != DataFileContent.DATA for f in found):
        return None
    return tuple(FileScanTask(f) for f in found)


# Manifests read, by path. A manifest is never changed once written (Iceberg writes a new one with
# a new name), so what was read stays right. Only small manifests are kept (the many that appends
# add; a compaction's one large manifest is read again), and at most so many files in all (a few
# KB each, with their statistics), least recently used dropped first.
_MANIFEST_FILES_MAX = 256
_manifests: LRUCache[str, tuple[DataFile, ...]] = LRUCache(maxsize=20_000, getsizeof=len)
_manifests_lock = threading.Lock()  # cachetools' caches are not thread-safe


def _live_files(io: FileIO, manifest: ManifestFile) -> tuple[DataFile, ...]:
    """The files a data manifest holds live (added or existing, not deleted)."""
    key = manifest.manifest_path
    with _manifests_lock:
        found = _manifests.get(key)
    if found is None:
        found = tuple(e.data_file for e in manifest.fetch_manifest_entry(io, discard_deleted=True))
        if len(found) <= _MANIFEST_FILES_MAX:
            with _manifests_lock:
                _manifests[key] = found
    return found


def local_path(location: str) -> str | None:
    """The local path of a file location, spelled as pyiceberg reads and writes it, or None when
    the file lives elsewhere (s3://, ...). A ``file://`` location is not percent-decoded, because
    pyiceberg does not decode it either: every part of SCITI must name a file as pyiceberg does."""
    scheme, _netloc, path = PyArrowFileIO.parse_location(location)
    return path if scheme == "file" else None


def read_tasks(table: Table, tasks: Iterable[FileScanTask], schema: Schema | None = None) -> pa.Table:
    """Rows of the given files with their delete files applied, projected to ``schema``."""
    return _scan(table, schema).to_table(tasks=list(tasks))


def read_task_batches(
    table: Table, tasks: Iterable[FileScanTask], schema: Schema | None = None
) -> Iterator[pa.RecordBatch]:
    """Like :func:`read_tasks`, one record batch at a time (bounded memory)."""
    return _scan(table, schema).to_record_batches(tasks=list(tasks))


def _scan(table: Table, schema: Schema | None) -> ArrowScan:
    return ArrowScan(
        table_metadata=table.metadata,
        io=table.io,
        projected_schema=schema or table.schema(),
        row_filter=AlwaysTrue(),
    )


def write_data_files(table: Table, data: pa.Table, *, max_rows: int | None = None) -> list[DataFile]:
    """Write ``data`` (already in the table's schema) as new data files; nothing is committed.

    ``max_rows`` caps the rows per file (compaction's target); pyiceberg otherwise packs files by
    its target size in bytes. Rows are sorted by the table's sort order first (so consecutive files
    hold consecutive key ranges) and each file records that order (see :mod:`sciti.lake.layout`);
    row groups follow the table's ``write.parquet.row-group-limit``.
    """
    if data.num_rows == 0:
        return []
    data, order_id = sort_rows(table, data)
    write_uuid = uuid.uuid4()
    counter = itertools.count(0)
    step = max_rows or data.num_rows
    files: list[DataFile] = []
    for start in range(0, data.num_rows, step):
        files.extend(
            _dataframe_to_data_files(
                table_metadata=table.metadata,
                df=data.slice(start, step),
                io=table.io,
                write_uuid=write_uuid,
                counter=counter,
            )
        )
    mark_sorted(files, order_id)
    return files


# (table uuid, schema id) -> Arrow schema. An Iceberg schema id never changes meaning within a
# table, and converting the schema on every commit showed up in commit profiles.
_ARROW_SCHEMAS: dict[tuple[str, int], pa.Schema] = {}


def arrow_schema(table: Table) -> pa.Schema:
    """The table's current schema as Arrow (converted once per table and schema version)."""
    key = (str(table.metadata.table_uuid), table.metadata.current_schema_id)
    found = _ARROW_SCHEMAS.get(key)
    if found is None:
        if len(_ARROW_SCHEMAS) > 4096:  # many short-lived lakes (tests): start over
            _ARROW_SCHEMAS.clear()
        found = _ARROW_SCHEMAS[key] = table.schema().as_arrow()
    return found


def conform(data: pa.Table, table: Table) -> pa.Table:
    """Order and cast columns to the table's schema; absent columns become nulls."""
    target = arrow_schema(table)
    cols = []
    for f in target:
        if f.name in data.column_names:
            col = data.column(f.name)
            try:
                cols.append(col if col.type == f.type else col.cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise LakeError(
                    f"column {f.name!r} ({col.type}) does not fit the table's type {f.type}: {exc}",
                    remedy="convert the values first, or evolve the table's schema",
                ) from None
        else:
            cols.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=target)
