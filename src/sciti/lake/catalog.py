"""The Iceberg lake: one SQL catalog, zones as namespaces, atomic batch commits with provenance.

Every commit made on behalf of an acquisition batch carries the batch id in the snapshot summary
(``sciti.batch-id``), so after a crash the acquisition runner can ask the lake itself whether a
batch reached a table, instead of trusting a second system.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table

from sciti.lake.errors import LakeError

ZONES = ("raw", "std", "ref", "risk", "sec")
BATCH_PROPERTY = "sciti.batch-id"


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
            try:
                self.catalog.create_namespace(zone)
            except NamespaceAlreadyExistsError:
                pass

    def table(self, ident: str) -> Table:
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            raise LakeError(f"no lake table {ident!r}", remedy="list tables with `sciti sql \"SHOW TABLES\"`") from None

    def exists(self, ident: str) -> bool:
        return self.catalog.table_exists(ident)

    def ensure_table(self, ident: str, schema: pa.Schema) -> Table:
        """Create the table if missing; add any new columns of ``schema`` (schema evolution, no rewrite)."""
        with self._lock:
            zone = ident.split(".", 1)[0]
            if zone not in ZONES:
                raise LakeError(f"table {ident!r} is not in a known zone", remedy=f"use one of {ZONES}")
            try:
                self.catalog.create_namespace(zone)
            except NamespaceAlreadyExistsError:
                pass
            try:
                return self.catalog.create_table(ident, schema=schema)
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
        props = {BATCH_PROPERTY: batch_id} if batch_id else {}
        table.append(_conform(data, table), snapshot_properties=props)
        return table.current_snapshot().snapshot_id

    def has_batch(self, ident: str, batch_id: str) -> bool:
        """Whether a commit for ``batch_id`` is in the table's history (survives compaction)."""
        if not self.exists(ident):
            return False
        table = self.table(ident)
        return any(
            s.summary is not None and s.summary.additional_properties.get(BATCH_PROPERTY) == batch_id
            for s in table.snapshots()
        )


def _conform(data: pa.Table, table: Table) -> pa.Table:
    """Order and cast columns to the table's schema; absent columns become nulls."""
    target = table.schema().as_arrow()
    cols = []
    for f in target:
        if f.name in data.column_names:
            col = data.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=target)


@lru_cache(maxsize=4)
def open_lake(catalog_uri: str, warehouse: str) -> Lake:
    lake = Lake(catalog_uri, warehouse)
    lake.ensure_zones()
    return lake
