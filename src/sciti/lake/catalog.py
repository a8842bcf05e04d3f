"""The Iceberg lake: one SQL catalog, zones as namespaces, atomic batch commits with provenance.

Every commit made on behalf of an acquisition batch carries the batch id in the snapshot summary
(``sciti.batch-id``), so after a crash the acquisition runner can ask the lake itself whether a
batch reached a table, instead of trusting a second system.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyarrow as pa
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import BooleanExpression
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.lake import history as _history
from sciti.lake import writes as _writes
from sciti.lake.errors import LakeError
from sciti.lake.files import conform, write_data_files
from sciti.lake.history import BATCH_PROPERTY, SnapshotInfo, TableInfo
from sciti.lake.layout import DEFAULT_LAYOUT, default_sort_order, layout_properties
from sciti.lake.reclaim import ORPHAN_DAYS, Reachable, Reclaimed, remove_expired, remove_orphans
from sciti.lake.writes import CompactResult, UpsertResult

ZONES = ("raw", "std", "ref", "risk", "sec")
TABLE_PROPERTIES = {
    # Every commit writes a new metadata file and lists the previous ones in it; keep few, since
    # nothing of ours reads old metadata files (time travel goes through snapshots).
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
# Default retention for Lake.maintain / `sciti lake maintain` (see decision 0005): every snapshot
# of the last KEEP_ALL_HOURS, then the newest of each hour up to KEEP_DAYS, and always the newest
# KEEP_LAST. A feed committing every 5 s then keeps ~900 snapshots instead of ~120,000.
KEEP_DAYS = 7
KEEP_LAST = 50
KEEP_ALL_HOURS = 1.0


@dataclass(frozen=True)
class ExpireResult:
    """Snapshots expired, and the files only they used, removed from disk."""

    expired: int
    removed: Reclaimed = Reclaimed()


@dataclass(frozen=True)
class MaintainResult:
    """What one maintenance pass did to a table."""

    ident: str
    compact: CompactResult
    expired: int
    snapshots_left: int
    removed: Reclaimed = Reclaimed()  # files of expired snapshots
    orphans: Reclaimed = Reclaimed()  # files no snapshot ever used (a writer stopped half-way)


class _Catalog(SqlCatalog):
    """pyiceberg's SQL catalog, except that a commit starts from the table the lake holds when the
    catalog still names that table's metadata file. pyiceberg's ``commit_table`` loads the table
    again first, reading and parsing a metadata file that grows with every snapshot; the lake
    already holds it, changed in place by its last commit (decision 0125). Metadata files are
    written once under a new name, so the same location means the same metadata."""

    def __init__(
        self, name: str, held: dict[str, Table], location: Callable[[str], str | None], **props: str
    ) -> None:
        super().__init__(name, **props)
        self._held = held
        self._location = location

    def load_table(self, identifier: str | tuple[str, ...]) -> Table:
        ident = ".".join(self.identifier_to_tuple(identifier))
        table = self._held.get(ident)
        if table is not None and table.metadata_location == self._location(ident):
            return table
        return super().load_table(identifier)


class Lake:
    """Access to the lake's tables. One instance per (catalog, warehouse); cheap to share.

    Loaded tables are kept and reused while the catalog still points at the same metadata file
    (one small SQL query checks it), so a commit does not re-read and re-parse the table metadata
    that the previous commit just wrote.
    """

    def __init__(self, catalog_uri: str, warehouse: str):
        self.catalog_uri = catalog_uri
        self.warehouse = warehouse
        self._tables: dict[str, Table] = {}
        self.catalog: SqlCatalog = _Catalog(
            "sciti",
            self._tables,
            self._metadata_location,
            uri=catalog_uri,
            warehouse=warehouse,
            init_catalog_tables="true",
        )
        self._lock = threading.Lock()
        self._table_locks: dict[str, threading.RLock] = {}
        self._reach: dict[str, Reachable] = {}  # per table, kept between upkeep passes

    def ensure_zones(self) -> None:
        for zone in ZONES:
            with contextlib.suppress(NamespaceAlreadyExistsError):
                self.catalog.create_namespace(zone)

    def table(self, ident: str) -> Table:
        """The table at its current metadata (reused when unchanged since last loaded)."""
        location = self._metadata_location(ident)
        if location is None:
            self._tables.pop(ident, None)
            raise LakeError(f"no lake table {ident!r}", remedy="list tables with `sciti tables`")
        cached = self._tables.get(ident)
        if cached is not None and cached.metadata_location == location:
            return cached
        try:
            table = SqlCatalog.load_table(self.catalog, ident)  # not held: read it (checked above)
        except NoSuchTableError:
            raise LakeError(f"no lake table {ident!r}", remedy="list tables with `sciti tables`") from None
        self._tables[ident] = table
        return table

    def table_locations(self) -> dict[str, str]:
        """Every table's current metadata file (``zone.name`` -> location), in one catalog query."""
        stmt = select(
            IcebergTables.table_namespace, IcebergTables.table_name, IcebergTables.metadata_location
        ).where(IcebergTables.catalog_name == self.catalog.name)
        if (only_tables := self.catalog._iceberg_type_filter()) is not None:
            stmt = stmt.where(only_tables)
        with Session(self.catalog.engine) as session:
            return {f"{ns}.{name}": loc for ns, name, loc in session.execute(stmt) if loc}

    def table_at(self, ident: str, location: str) -> Table:
        """The table whose catalog entry names ``location`` (from :meth:`table_locations`).

        Reuses the loaded table while it is still at that metadata file: a reader that already
        knows the location skips the per-table catalog query, the JSON read and its parsing. Any
        commit writes a new metadata file, so a changed table is always loaded again.
        """
        cached = self._tables.get(ident)
        if cached is not None and cached.metadata_location == location:
            return cached
        table = SqlCatalog.load_table(self.catalog, ident)
        self._tables[ident] = table
        return table

    def exists(self, ident: str) -> bool:
        return self._metadata_location(ident) is not None

    def _metadata_location(self, ident: str) -> str | None:
        """Where the catalog says the table's current metadata is; None when there is no such table."""
        namespace, _, name = ident.rpartition(".")
        stmt = select(IcebergTables.metadata_location).where(
            IcebergTables.catalog_name == self.catalog.name,
            IcebergTables.table_namespace == namespace,
            IcebergTables.table_name == name,
        )
        if (only_tables := self.catalog._iceberg_type_filter()) is not None:  # views share the table
            stmt = stmt.where(only_tables)
        with Session(self.catalog.engine) as session:
            return session.scalar(stmt)

    def _guard(self, ident: str) -> threading.RLock:
        """One lock per table: a cached table object is changed in place by each commit."""
        with self._lock:
            return self._table_locks.setdefault(ident, threading.RLock())

    def ensure_table(self, ident: str, schema: pa.Schema) -> Table:
        """Create the table if missing; add any new columns of ``schema`` (schema evolution, no rewrite)."""
        zone = ident.split(".", 1)[0]
        if zone not in ZONES:
            raise LakeError(f"table {ident!r} is not in a known zone", remedy=f"use one of {ZONES}")
        with self._guard(ident):
            with contextlib.suppress(NamespaceAlreadyExistsError):
                self.catalog.create_namespace(zone)
            if not self.exists(ident):
                with contextlib.suppress(TableAlreadyExistsError):
                    self._tables[ident] = self.catalog.create_table(
                        ident, schema=schema, properties={**TABLE_PROPERTIES, **DEFAULT_LAYOUT}
                    )
            table = self.table(ident)
            stale = {k: v for k, v in TABLE_PROPERTIES.items() if table.properties.get(k) != v}
            if stale:  # tables made before a property changed get it once
                with _writes.transaction(table) as tx:
                    tx.set_properties(stale)
            known = {f.name for f in table.schema().fields}
            if any(f.name not in known for f in schema):
                with table.update_schema() as update:
                    update.union_by_name(schema)
            self._ensure_layout(table)
            return table

    def _ensure_layout(self, table: Table) -> None:
        """Give a table the default file layout once: sorted by its lookup key, bounded row groups.

        Only fills what is missing: a sort order or row-group limit someone chose is kept.
        """
        try:
            missing = layout_properties(table)
            if missing:
                with _writes.transaction(table) as tx:
                    tx.set_properties(missing)
            default_sort_order(table)
        except CommitFailedException:
            # Another process changed the table first (likely the same defaults): drop our copy so
            # the next use reloads it; a default still missing is applied on a later pass.
            self._tables.pop(".".join(table.name()), None)

    def append(self, ident: str, data: pa.Table, *, batch_id: str | None = None) -> int | None:
        """Append rows in one atomic commit; returns the new snapshot id (None for no rows)."""
        if data.num_rows == 0:
            return None
        with self._guard(ident):
            table = self.table(ident)
            return _writes.append(table, conform(data, table), _props(batch_id))

    def stage(self, ident: str, data: pa.Table) -> list[DataFile]:
        """Write rows as new data files of ``ident`` without committing them: no reader sees them
        until ``commit_staged``. Lets a caller keep the slow part, writing the files, outside a
        transaction it holds elsewhere; ``discard_staged`` removes files it will not commit."""
        table = self.table(ident)
        return write_data_files(table, conform(data, table))

    def commit_staged(
        self, ident: str, files: Sequence[DataFile], *, batch_id: str | None = None
    ) -> int | None:
        """Commit staged files in one atomic snapshot; returns its id (None for no files)."""
        with self._guard(ident):
            return _writes.append_written(self.table(ident), files, _props(batch_id))

    def discard_staged(self, ident: str, files: Sequence[DataFile]) -> None:
        """Delete staged files that will not be committed (never ones a snapshot refers to)."""
        io = self.table(ident).io
        for f in files:
            with contextlib.suppress(OSError):
                io.delete(f.file_path)

    def upsert(
        self,
        ident: str,
        data: pa.Table,
        key: str | Sequence[str] = "record_id",
        *,
        batch_id: str | None = None,
        update: bool = True,
        remove: Sequence[str] = (),
    ) -> UpsertResult:
        """Replace the rows whose ``key`` is in ``data`` and insert the others, in one atomic commit;
        ``remove``: rows (by a one-column key) to take out in that same commit.

        With ``update=False`` rows already present are kept as they are (insert-if-absent).
        Cost: reads the key column of every data file, then rewrites only files holding a matched key.
        """
        keys = (key,) if isinstance(key, str) else tuple(key)
        with self._guard(ident):
            return _writes.upsert(
                self.table(ident), data, keys, _props(batch_id), update=update, remove=remove
            )

    def delete(
        self, ident: str, filter_expr: str | BooleanExpression, *, batch_id: str | None = None
    ) -> int | None:
        """Delete rows matching ``filter_expr`` (pyiceberg syntax: ``"office_code = 'X' AND version < 2"``,
        or an expression built with ``pyiceberg.expressions``, for long lists of values).

        Returns the new snapshot id, or None when nothing matched.
        """
        with self._guard(ident), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not match any records" is reported by returning None
            return _writes.delete(self.table(ident), filter_expr, _props(batch_id))

    def replace(self, ident: str, data: pa.Table, *, batch_id: str | None = None) -> int | None:
        """Replace all rows of the table with ``data`` in one atomic commit; returns the snapshot id."""
        with self._guard(ident), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _writes.replace_all(self.table(ident), data, _props(batch_id))

    def compact(self, ident: str, target_file_rows: int = 1_000_000) -> CompactResult:
        """Rewrite small (or unsorted) data files into bigger ones sorted by the table's lookup key,
        in one atomic ``replace`` snapshot; rows unchanged (see sciti.lake.layout).

        Old snapshots (and their batch ids) stay in the history: time travel and has_batch still work.
        Rows other processes append meanwhile are kept: the commit is retried on top of theirs
        (sciti.lake.writes.compact); a conflicting rewrite of the same files fails with a LakeError.
        """
        with self._guard(ident):
            table = self.table(ident)
            self._ensure_layout(table)  # a table from before sorted layouts is sorted by this pass
            # A retried commit refreshes ``table`` in place, so the cached object stays current.
            return _writes.compact(table, target_file_rows, {})

    def expire_snapshots(
        self,
        ident: str,
        older_than: timedelta,
        *,
        retain_last: int = 100,
        keep_all: timedelta | None = None,
        protected: Collection[int] = (),
    ) -> ExpireResult:
        """Forget snapshots older than ``older_than`` (keeping at least the newest ``retain_last``)
        and remove the files only they used (sciti.lake.reclaim).

        With ``keep_all``, history is also thinned: snapshots younger than ``keep_all`` are all
        kept, older ones only as the newest of each UTC hour (see _writes.snapshots_to_expire).
        Branch and tag heads, the current snapshot and the ids in ``protected`` (e.g. snapshots a
        model was trained on) are never expired.

        pyiceberg copies the whole table metadata several times per commit, so every snapshot kept
        makes the next commit slower; real-time tables need this after compaction. Time travel
        reaches back only as far as the snapshots kept; ``has_batch`` then looks in the data.
        A reader still holding an expired snapshot open may then fail to read its files; upkeep
        expires only snapshots older than the hours it keeps whole.
        """
        if keep_all is not None and keep_all < timedelta(0):
            raise LakeError(f"cannot keep all snapshots of the last {keep_all}", remedy="use 0 or more")
        with self._guard(ident):
            table = self.table(ident)
            return self._expire(table, older_than, retain_last, keep_all, protected, Reachable(table.io))

    @staticmethod
    def _expire(
        table: Table,
        older_than: timedelta,
        retain_last: int,
        keep_all: timedelta | None,
        protected: Collection[int],
        reach: Reachable,
    ) -> ExpireResult:
        now = datetime.now(UTC)
        expired = _writes.expire(
            table,
            now - older_than,
            retain_last,
            keep_all_after=None if keep_all is None else now - keep_all,
            protected=protected,
        )
        return ExpireResult(len(expired), remove_expired(table, expired, reach))

    def maintain(
        self,
        ident: str,
        *,
        keep_days: float = KEEP_DAYS,
        keep_last: int = KEEP_LAST,
        keep_all_hours: float = KEEP_ALL_HOURS,
        target_file_rows: int = 1_000_000,
        protected: Collection[int] = (),
        orphan_days: float = ORPHAN_DAYS,
        staged: Collection[str] = (),
    ) -> MaintainResult:
        """Periodic upkeep: compact small files, then expire snapshots: all older than ``keep_days``,
        and between ``keep_all_hours`` and ``keep_days`` all but the newest of each UTC hour. The
        newest ``keep_last``, branch/tag heads and ``protected`` ids are always kept. Bounds both
        query cost (files) and commit cost (snapshots); the time-travel window shrinks to the
        retention, and is hourly past ``keep_all_hours`` (decision 0005).

        Then gives the disk back (decision 0077): the files only expired snapshots used, and
        orphans older than ``orphan_days`` that no snapshot refers to, except ``staged`` files
        (written to be committed later, e.g. scoring parts awaiting the lake).
        """
        if keep_days < 0 or keep_last < 1 or keep_all_hours < 0 or orphan_days < 0:
            raise LakeError(
                f"cannot keep {keep_days} days / {keep_last} snapshots / all of {keep_all_hours} hours"
                f" / orphans of {orphan_days} days",
                remedy="keep at least 0 days, 0 hours and 1 snapshot (the current one)",
            )
        with self._guard(ident):
            compacted = self.compact(ident, target_file_rows)
            table = self.table(ident)
            reach = self._reach.setdefault(ident, Reachable(table.io))
            expired = self._expire(
                table, timedelta(days=keep_days), keep_last, timedelta(hours=keep_all_hours), protected, reach
            )
            orphans = remove_orphans(table, reach, older_than_days=orphan_days, keep=staged)
            reach.keep_only(table.metadata)
            left = len(table.metadata.snapshots)
        return MaintainResult(ident, compacted, expired.expired, left, expired.removed, orphans)

    def history(self, ident: str) -> list[SnapshotInfo]:
        """The table's commits, oldest first: time, operation, batch id, row counts."""
        return _history.history(self.table(ident))

    def snapshot_at(self, ident: str, ts: datetime | int) -> int | None:
        """Snapshot id current at ``ts`` (latest at or before it; naive datetimes are UTC), or None."""
        return _history.snapshot_at(self.table(ident), ts)

    def list_tables(self) -> list[TableInfo]:
        """Every table of every zone, with current snapshot, row and file counts."""
        infos = []
        for ns in sorted(self.catalog.list_namespaces()):
            for ident_parts in sorted(self.catalog.list_tables(ns)):
                ident = ".".join(ident_parts)
                infos.append(_history.table_info(ident, self.table(ident)))
        return infos

    def has_batch(self, ident: str, batch_id: str) -> bool:
        """Whether ``batch_id`` reached the table, even after its snapshot was expired.

        Looks in the snapshot summaries first (no data read); only when the table has lost
        snapshots to expiry does it look for a row carrying the batch id (column statistics let
        the scan skip almost every file).
        """
        if not self.exists(ident):
            return False
        return _history.has_batch(self.table(ident), batch_id)

    def append_files(self, ident: str, paths: Sequence[str], *, batch_id: str | None = None) -> int | None:
        """Commit Parquet files already written into the table's data folder (see lake/register.py)."""
        from sciti.lake.register import append_files

        with self._guard(ident):  # the cached table object is updated in place by the commit
            return append_files(self.table(ident), paths, batch_id=batch_id)


def _props(batch_id: str | None) -> dict[str, str]:
    return {BATCH_PROPERTY: batch_id} if batch_id else {}


@lru_cache(maxsize=4)
def open_lake(catalog_uri: str, warehouse: str) -> Lake:
    lake = Lake(catalog_uri, warehouse)
    lake.ensure_zones()
    return lake
