"""How one lake table appears inside DuckDB: a view over the exact data files of one snapshot.

The view reads ``read_parquet([file, ...], schema=MAP{field_id: {name, type, default_value}})``:
DuckDB matches Parquet columns by Iceberg field id, so renamed columns keep their data, columns
added later read as NULL from older files, and widened types are cast. Nothing globs a folder, so
files of other snapshots (deleted rows, overwritten versions, uncommitted writes) are never seen.

When DuckDB alone cannot read a snapshot correctly (delete files written by another engine,
files without field ids, nested types, files outside the local filesystem), the table is read by
pyiceberg's own reader and handed to DuckDB as Arrow: slower, but right.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from sciti.lake.files import NAME_MAPPING_PROPERTY, local_path, read_tasks, snapshot_files

_SIMPLE_TYPES: dict[type[IcebergType], str] = {
    BooleanType: "BOOLEAN",
    IntegerType: "INTEGER",
    LongType: "BIGINT",
    FloatType: "FLOAT",
    DoubleType: "DOUBLE",
    DateType: "DATE",
    TimeType: "TIME",
    TimestampType: "TIMESTAMP",
    TimestamptzType: "TIMESTAMPTZ",
    StringType: "VARCHAR",
    UUIDType: "UUID",
    BinaryType: "BLOB",
    FixedType: "BLOB",
}


def duck_type(iceberg_type: IcebergType) -> str | None:
    """DuckDB type of an Iceberg primitive type; None for types the view cannot map (nested)."""
    if isinstance(iceberg_type, DecimalType):
        return f"DECIMAL({iceberg_type.precision},{iceberg_type.scale})"
    return _SIMPLE_TYPES.get(type(iceberg_type))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableView:
    """What DuckDB needs to show one table: a SELECT for the view, the files it may read, or Arrow rows."""

    ident: str
    snapshot_id: int | None
    select_sql: str | None
    paths: tuple[str, ...] = ()
    arrow: pa.Table | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ViewRule:
    """How one table is shown to one caller, as plain SQL written by the access policy.

    The lake knows nothing of roles: it applies what it is given. ``row_filter`` is a boolean SQL
    expression over the table's columns (it may read the views of ``depends``, created first);
    ``columns`` maps a column name to the SQL expression shown in its place (same type: a mask, or
    a typed NULL). Columns not named are shown as stored.
    """

    row_filter: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    depends: tuple[str, ...] = ()


def ruled_select(base_sql: str, columns: tuple[str, ...], rule: ViewRule) -> str:
    """``base_sql`` (a SELECT of the whole table) with the rule's masks and row filter applied.

    Everything is inlined in one statement, so nothing in the connection exposes the unmasked rows.
    """
    cols = ", ".join(
        f"{rule.columns[c]} AS {quote_ident(c)}" if c in rule.columns else quote_ident(c) for c in columns
    )
    where = f" WHERE ({rule.row_filter})" if rule.row_filter else ""
    return f"SELECT {cols} FROM ({base_sql}) AS __sciti_base{where}"


# Snapshots never change once committed, so a plan for (table, snapshot, schema) is reusable:
# repeated queries skip reading manifests.
_PLAN_CACHE: OrderedDict[tuple[str, int, int], TableView] = OrderedDict()
_PLAN_CACHE_SIZE = 256
_plan_lock = threading.Lock()


def clear_plan_cache() -> None:
    """Forget cached snapshot plans (benchmarks measure planning; tests start clean)."""
    with _plan_lock:
        _PLAN_CACHE.clear()


def table_view(ident: str, table: Table, snapshot: Snapshot | None) -> TableView:
    """Plan the view of ``table`` at ``snapshot`` (None: no data at that point, an empty view)."""
    key = (
        (str(table.metadata.table_uuid), snapshot.snapshot_id, snapshot.schema_id or 0) if snapshot else None
    )
    if key is not None:
        with _plan_lock:
            cached = _PLAN_CACHE.get(key)
            if cached is not None:
                _PLAN_CACHE.move_to_end(key)
                return TableView(
                    ident, cached.snapshot_id, cached.select_sql, cached.paths, columns=cached.columns
                )
    files = snapshot_files(table, snapshot)
    columns = [(f, duck_type(f.field_type)) for f in files.schema.fields]
    paths = [local_path(p) for p in files.paths]
    needs_pyiceberg = (
        files.has_deletes
        or any(t is None for _, t in columns)
        or any(p is None for p in paths)
        or NAME_MAPPING_PROPERTY in table.properties
    )
    if needs_pyiceberg:
        # Not cached: the rows are materialised and could be large.
        arrow = read_tasks(table, files.tasks, files.schema)
        return TableView(ident, files.snapshot_id, None, (), arrow, tuple(arrow.schema.names))
    local = tuple(p for p in paths if p is not None)
    names = tuple(f.name for f in files.schema.fields)
    view = TableView(ident, files.snapshot_id, _select_sql(files.schema, local), local, columns=names)
    if key is not None:
        with _plan_lock:
            _PLAN_CACHE[key] = view
            while len(_PLAN_CACHE) > _PLAN_CACHE_SIZE:
                _PLAN_CACHE.popitem(last=False)
    return view


def _select_sql(schema: Schema, paths: tuple[str, ...]) -> str:
    fields = schema.fields
    if not paths:
        cols = ", ".join(f"CAST(NULL AS {duck_type(f.field_type)}) AS {quote_ident(f.name)}" for f in fields)
        return f"SELECT {cols} WHERE false"
    mapping = ", ".join(
        f"{f.field_id}: {{name: {quote_literal(f.name)}, "
        f"type: {quote_literal(duck_type(f.field_type) or '')}, default_value: NULL}}"
        for f in fields
    )
    files = ", ".join(quote_literal(p) for p in paths)
    # Name the columns explicitly so the view's column order is the schema's, whatever the files hold.
    cols = ", ".join(quote_ident(f.name) for f in fields)
    return f"SELECT {cols} FROM read_parquet([{files}], schema=MAP {{{mapping}}})"
