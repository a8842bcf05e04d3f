"""How one lake table appears inside DuckDB: a view over the exact data files of one snapshot.

The view reads ``read_parquet([file, ...], schema=MAP{field_id: {name, type, default_value}})``:
DuckDB matches Parquet columns by Iceberg field id, so renamed columns keep their data, columns
added later read as NULL from older files, and widened types are cast. Nothing globs a folder, so
files of other snapshots (deleted rows, overwritten versions, uncommitted writes) are never seen.

Nested columns (lists, maps, structs) map to DuckDB's nested types. DuckDB matches top-level
columns by field id but the children of a struct by name, and fails on a child that some files
lack, so a table whose history added, dropped or renamed a field inside a struct is read by
pyiceberg (see :func:`structs_stable`); widened types inside lists, maps and structs are cast.

When DuckDB alone cannot read a snapshot correctly (delete files written by another engine,
files without field ids, such struct renames, types it has no mapping for, files outside the local
filesystem), the table is read by pyiceberg's own reader and handed to DuckDB as Arrow: slower
(the whole snapshot is materialised, nothing is pushed down), but right.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import schema_to_pyarrow
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
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
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
    """DuckDB type of an Iceberg type, nested ones included; None for a type the view cannot map."""
    if isinstance(iceberg_type, DecimalType):
        return f"DECIMAL({iceberg_type.precision},{iceberg_type.scale})"
    if isinstance(iceberg_type, ListType):
        element = duck_type(iceberg_type.element_type)
        return None if element is None else f"{element}[]"
    if isinstance(iceberg_type, MapType):
        key, value = duck_type(iceberg_type.key_type), duck_type(iceberg_type.value_type)
        return None if key is None or value is None else f"MAP({key}, {value})"
    if isinstance(iceberg_type, StructType):
        children = [(f.name, duck_type(f.field_type)) for f in iceberg_type.fields]
        if not children or any(t is None for _, t in children):
            return None
        return "STRUCT(" + ", ".join(f"{quote_ident(n)} {t}" for n, t in children) + ")"
    return _SIMPLE_TYPES.get(type(iceberg_type))


def _struct_children(column: NestedField) -> list[tuple[int, NestedField]]:
    """(struct's field id, child) for every field inside a struct, at any depth within ``column``."""
    out: list[tuple[int, NestedField]] = []
    todo: list[tuple[int, IcebergType]] = [(column.field_id, column.field_type)]
    while todo:
        parent, current = todo.pop()
        if isinstance(current, StructType):
            for f in current.fields:
                out.append((parent, f))
                todo.append((f.field_id, f.field_type))
        elif isinstance(current, ListType):
            todo.append((current.element_id, current.element_type))
        elif isinstance(current, MapType):
            todo.extend([(current.key_id, current.key_type), (current.value_id, current.value_type)])
    return out


def structs_stable(schemas: list[Schema]) -> bool:
    """True when every struct has the same children (ids and names) in all the table's schemas.

    DuckDB then reads every data file's struct children (which it matches by name) as the Iceberg
    schema (which matches by id) says. A rename would read the old files' values as NULL, a field
    dropped and added again under its old name would read the old values into the new field, and an
    added child that older files lack fails inside DuckDB when it is selected alone.
    """
    children: dict[int, set[tuple[int, str]]] = {}
    for schema in schemas:
        found: dict[int, set[tuple[int, str]]] = {}
        for top in schema.fields:
            for parent, child in _struct_children(top):
                found.setdefault(parent, set()).add((child.field_id, child.name))
        for parent, kids in found.items():
            if children.setdefault(parent, kids) != kids:
                return False
    return True


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
    nested = any(not f.field_type.is_primitive for f in files.schema.fields)
    needs_pyiceberg = (
        files.has_deletes
        or any(t is None for _, t in columns)
        or (nested and not structs_stable(list(table.schemas().values())))
        or any(p is None for p in paths)
        or NAME_MAPPING_PROPERTY in table.properties
    )
    if needs_pyiceberg:
        # Not cached: the rows are materialised and could be large.
        arrow = read_tasks(table, files.tasks, files.schema)
        return TableView(ident, files.snapshot_id, None, (), arrow, tuple(arrow.schema.names))
    local = tuple(p for p in paths if p is not None)
    names = tuple(f.name for f in files.schema.fields)
    select = _select_by_name(files.schema, local) if files_match(files.schema, local) else None
    view = TableView(
        ident, files.snapshot_id, select or _select_sql(files.schema, local), local, columns=names
    )
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


# Reading by name is equivalent to reading by field id only when every file holds exactly the
# snapshot schema's columns (same names, ids and types): after compaction, that is every file. It
# saves DuckDB from binding the field-id map on every query (~3 ms a query, ~6 ms a view for a
# 30-column table). Data files never change, so each file's columns are read from its footer once.
_FILE_COLUMNS: dict[str, frozenset[tuple[str, int, str | None]] | None] = {}
_FILE_COLUMNS_MAX = 8192
_BY_NAME_MAX_FILES = 512  # beyond this, reading every footer once costs more than it saves


def files_match(schema: Schema, paths: tuple[str, ...]) -> bool:
    """Whether every file holds exactly ``schema``'s top-level columns, by name, id and type."""
    if not paths or len(paths) > _BY_NAME_MAX_FILES:
        return False
    try:
        wanted = frozenset(
            (f.name, f.field_id, _type_key(t))
            for f, t in zip(schema.fields, schema_to_pyarrow(schema, include_field_ids=False), strict=True)
        )
    except (ValueError, TypeError):  # a type pyarrow has no mapping for: read by field id
        return False
    if any(k[2] is None for k in wanted):
        return False
    return all(_file_columns(p) == wanted for p in paths)


def _file_columns(path: str) -> frozenset[tuple[str, int, str | None]] | None:
    if path not in _FILE_COLUMNS:
        if len(_FILE_COLUMNS) >= _FILE_COLUMNS_MAX:
            _FILE_COLUMNS.clear()
        try:
            arrow = pq.read_schema(path)
        except (OSError, pa.ArrowException):  # missing or damaged: let the field-id read report it
            return None
        cols = []
        for f in arrow:
            field_id = (f.metadata or {}).get(b"PARQUET:field_id")
            if field_id is None:
                _FILE_COLUMNS[path] = None
                return None
            cols.append((f.name, int(field_id), _type_key(f.type)))
        _FILE_COLUMNS[path] = frozenset(cols)
    return _FILE_COLUMNS[path]


def _type_key(arrow_type: pa.DataType | pa.Field) -> str | None:
    """A comparable spelling of a primitive type or a list of one (None: other nested types)."""
    t = arrow_type.type if isinstance(arrow_type, pa.Field) else arrow_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _type_key(t.value_type)
        return None if inner is None or inner.startswith("list<") else f"list<{inner}>"
    if pa.types.is_nested(t) or pa.types.is_dictionary(t):
        return None
    return str(t)


def _select_by_name(schema: Schema, paths: tuple[str, ...]) -> str:
    files = ", ".join(quote_literal(p) for p in paths)
    # Same-type casts cost nothing (DuckDB drops them) and pin each column to the field-id read's type.
    cols = ", ".join(
        f"CAST({quote_ident(f.name)} AS {duck_type(f.field_type)}) AS {quote_ident(f.name)}"
        for f in schema.fields
    )
    return f"SELECT {cols} FROM read_parquet([{files}])"
