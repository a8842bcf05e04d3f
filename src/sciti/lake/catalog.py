"""The Iceberg lake: one SQL catalog, zones as namespaces, atomic batch commits with provenance.

Every commit made on behalf of an acquisition batch carries the batch id in the snapshot summary
(``sciti.batch-id``), so after a crash the acquisition runner can ask the lake itself whether a
batch reached a table, instead of trusting a second system.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

from sciti.lake import history as _history
from sciti.lake import writes as _writes
from sciti.lake.errors import LakeError
from sciti.lake.files import conform
from sciti.lake.history import BATCH_PROPERTY, SnapshotInfo, TableInfo
from sciti.lake.writes import CompactResult, UpsertResult

ZONES = ("raw", "std", "ref", "risk", "sec")
# Every commit writes a new metadata file; real-time feeds commit often, so keep only the recent ones.
TABLE_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
}


class Lake:
    """Access to the lake's tables. One instance per (catalog, warehouse); cheap to share."""

    def __init__(self, catalog_uri: str, warehouse: str):
        self.catalog_uri = catalog_uri
        self.warehouse = warehouse
        self.catalog: Catalog = SqlCatalog(
            "sciti", uri=catalog_uri, warehouse=warehouse, **{"init_catalog_tables": "true"}
        )
        self._lock = threading.Lock()

    def ensure_zones(self) -> None:
        for zone in ZONES:
            with contextlib.suppress(NamespaceAlreadyExistsError):
                self.catalog.create_namespace(zone)

    def table(self, ident: str) -> Table:
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            raise LakeError(f"no lake table {ident!r}", remedy="list tables with `sciti tables`") from None

    def exists(self, ident: str) -> bool:
        return self.catalog.table_exists(ident)

    def ensure_table(self, ident: str, schema: pa.Schema) -> Table:
        """Create the table if missing; add any new columns of ``schema`` (schema evolution, no rewrite)."""
        with self._lock:
            zone = ident.split(".", 1)[0]
            if zone not in ZONES:
                raise LakeError(f"table {ident!r} is not in a known zone", remedy=f"use one of {ZONES}")
            with contextlib.suppress(NamespaceAlreadyExistsError):
                self.catalog.create_namespace(zone)
            try:
                return self.catalog.create_table(ident, schema=schema, properties=TABLE_PROPERTIES)
            except TableAlreadyExistsError:
                table = self.catalog.load_table(ident)
            known = {f.name for f in table.schema().fields}
            if any(f.name not in known for f in schema):
                with table.update_schema() as update:
                    update.union_by_name(schema)
                table = self.catalog.load_table(ident)
            return table

    def append(self, ident: str, data: pa.Table, *, batch_id: str | None = None) -> int | None:
        """Append rows in one atomic commit; returns the new snapshot id (None for no rows)."""
        if data.num_rows == 0:
            return None
        table = self.table(ident)
        table.append(conform(data, table), snapshot_properties=_props(batch_id))
        snap = table.current_snapshot()
        return snap.snapshot_id if snap else None

    def upsert(
        self,
        ident: str,
        data: pa.Table,
        key: str | Sequence[str] = "record_id",
        *,
        batch_id: str | None = None,
        update: bool = True,
    ) -> UpsertResult:
        """Replace the rows whose ``key`` is in ``data`` and insert the others, in one atomic commit.

        With ``update=False`` rows already present are kept as they are (insert-if-absent).
        Cost: reads the key column of every data file, then rewrites only files holding a matched key.
        """
        keys = (key,) if isinstance(key, str) else tuple(key)
        with self._lock:
            return _writes.upsert(self.table(ident), data, keys, _props(batch_id), update=update)

    def delete(self, ident: str, filter_expr: str, *, batch_id: str | None = None) -> int | None:
        """Delete rows matching ``filter_expr`` (pyiceberg syntax: ``"office_code = 'X' AND version < 2"``).

        Returns the new snapshot id, or None when nothing matched.
        """
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not match any records" is reported by returning None
            return _writes.delete(self.table(ident), filter_expr, _props(batch_id))

    def replace(self, ident: str, data: pa.Table, *, batch_id: str | None = None) -> int | None:
        """Replace all rows of the table with ``data`` in one atomic commit; returns the snapshot id."""
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _writes.replace_all(self.table(ident), data, _props(batch_id))

    def compact(self, ident: str, target_file_rows: int = 1_000_000) -> CompactResult:
        """Rewrite small data files into bigger ones in one atomic ``replace`` snapshot; rows unchanged.

        Old snapshots (and their batch ids) stay in the history: time travel and has_batch still work.
        """
        with self._lock:
            return _writes.compact(self.table(ident), target_file_rows, {})

    def expire_snapshots(self, ident: str, older_than: timedelta, *, retain_last: int = 100) -> int:
        """Forget snapshots older than ``older_than`` (keeping at least the newest ``retain_last``).

        pyiceberg copies the whole table metadata several times per commit, so every snapshot kept
        makes the next commit slower; real-time tables need this after compaction. Time travel and
        ``has_batch`` reach back only as far as the snapshots kept. Data files are left in place.
        Returns how many snapshots were expired.
        """
        with self._lock:
            table = self.table(ident)
            snaps = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
            cutoff_ms = int((datetime.now(UTC) - older_than).timestamp() * 1000)
            if retain_last > 0:
                cutoff_ms = min(
                    cutoff_ms, snaps[-retain_last].timestamp_ms if len(snaps) >= retain_last else 0
                )
            current = table.current_snapshot()
            keep = current.snapshot_id if current else None
            doomed = sum(1 for s in snaps if s.timestamp_ms < cutoff_ms and s.snapshot_id != keep)
            if doomed:
                cutoff = datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC)
                table.maintenance.expire_snapshots().older_than(cutoff).commit()
            return doomed

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
                infos.append(_history.table_info(ident, self.catalog.load_table(ident)))
        return infos

    def has_batch(self, ident: str, batch_id: str) -> bool:
        """Whether a commit for ``batch_id`` is in the table's history (survives compaction)."""
        if not self.exists(ident):
            return False
        table = self.table(ident)
        return any(
            s.summary is not None and s.summary.additional_properties.get(BATCH_PROPERTY) == batch_id
            for s in table.snapshots()
        )


def _props(batch_id: str | None) -> dict[str, str]:
    return {BATCH_PROPERTY: batch_id} if batch_id else {}


@lru_cache(maxsize=4)
def open_lake(catalog_uri: str, warehouse: str) -> Lake:
    lake = Lake(catalog_uri, warehouse)
    lake.ensure_zones()
    return lake
