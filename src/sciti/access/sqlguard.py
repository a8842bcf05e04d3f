"""Vet a user's SQL before it runs under the access policy: lake tables only, nothing else.

DuckDB parses the statement (``json_serialize_sql``) and we walk the syntax tree, so comments,
letter case, quoting, CTEs, subqueries and set operations are seen exactly as DuckDB sees them,
never guessed with regular expressions. A statement passes when it is one SELECT whose every
table reference is a lake table written ``zone.name`` (or a CTE of the query), which calls no
table function but ``range``/``generate_series``/``unnest``, and no function that reads files,
settings, the environment or the catalog. The lake's own lock-down (no external access beyond the
views' files, configuration locked) stays underneath as a second wall.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import duckdb

from sciti.access.errors import PermissionDenied

# Table functions that only make values.
_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}
# Functions (scalar or table) that read files, settings, the environment, the catalog or run SQL.
_DENIED_FUNCTIONS = {
    "current_setting",
    "getenv",
    "getvariable",
    "query",
    "query_table",
    "glob",
    "sniff_csv",
    "which_secret",
    "json_execute_serialized_sql",
    "json_serialize_sql",
    "json_deserialize_sql",
    "json_serialize_plan",
    "sql_auto_complete",
    "current_database",
    "current_schema",
    "current_schemas",
    "current_catalog",
}
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "pg_", "scan_")
_TABLE_REF_TYPES = {
    "BASE_TABLE", "JOIN", "SUBQUERY", "TABLE_FUNCTION", "EMPTY", "EXPRESSION_LIST", "SHOW_REF"
}  # fmt: skip
_REMEDY = "query lake tables as zone.name (e.g. std.declarations) in one SELECT; see docs/security-access.md"

_ZONE = re.compile(r"^([a-z][a-z0-9_]*)?$")
_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")

_parser = duckdb.connect(config={"enable_external_access": False})
_parser_lock = threading.Lock()


class SqlRefused(PermissionDenied):
    """The statement does something the SQL path does not allow."""

    code = "sql_refused"
    http_status = 400


def _refuse(message: str) -> SqlRefused:
    return SqlRefused(message, remedy=_REMEDY)


def vet(sql: str) -> set[str]:
    """The lake tables (``zone.name``, lower case) ``sql`` reads; raises SqlRefused for anything else."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _refuse(f"the SQL does not parse: {str(exc).strip().splitlines()[0]}") from None
    if len(statements) != 1:
        raise _refuse(f"expected one SQL statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise _refuse(f"only queries may run (one SELECT), not {statements[0].type.name}")
    with _parser_lock:
        (text,) = _parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone() or ("",)
    tree = json.loads(text)
    if tree.get("error"):
        raise _refuse(f"this form of query is not allowed: {tree.get('error_message', 'unknown')}")
    if len(tree.get("statements", [])) != 1:
        raise _refuse("expected one SQL statement")
    ctes = set(_cte_names(tree))
    tables: set[str] = set()
    _walk(tree["statements"][0], ctes, tables)
    return tables


def _cte_names(node: Any):
    if isinstance(node, dict):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for item in cte_map.get("map") or []:
                yield str(item.get("key", "")).lower()
        for value in node.values():
            yield from _cte_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _cte_names(value)


def _walk(node: Any, ctes: set[str], tables: set[str]) -> None:
    if isinstance(node, list):
        for value in node:
            _walk(value, ctes, tables)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if "table_name" in node or kind == "TABLE_FUNCTION":  # a table reference
        if kind not in _TABLE_REF_TYPES:
            raise _refuse(f"table reference of kind {kind} is not allowed")
        if kind == "BASE_TABLE":
            tables.update(_base_table(node, ctes))
        elif kind == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in _TABLE_FUNCTIONS:
                raise _refuse(f"table function {name}() is not allowed: queries read lake tables only")
        elif kind == "SHOW_REF" and not node.get("query"):
            raise _refuse("SHOW and DESCRIBE work on one lake table, e.g. DESCRIBE std.declarations")
    if node.get("class") == "FUNCTION" or kind == "FUNCTION":
        _check_function(node)
    for value in node.values():
        _walk(value, ctes, tables)


def _base_table(node: dict[str, Any], ctes: set[str]) -> set[str]:
    catalog = str(node.get("catalog_name") or "")
    schema = str(node.get("schema_name") or "").lower()
    name = str(node.get("table_name") or "").lower()
    if node.get("at_clause"):
        raise _refuse("AT (time travel) clauses are not supported: use the as_of option")
    if catalog:
        raise _refuse(f"{catalog}.{schema}.{name}: name lake tables as zone.name, without a catalog")
    if not _ZONE.match(schema) or (schema and not _BARE.match(name)) or any(c in name for c in "/\\:"):
        # DuckDB reads "a/b".parquet as the file a/b.parquet: nothing path-like is a table name.
        raise _refuse(f"{schema}.{name} is not a lake table name (zone.name)")
    if not schema:
        # A bare name must be a CTE, and identifier-like: DuckDB reads a bare 'x.parquet' as a file,
        # and a CTE of that name in another scope would not shadow it here.
        if name in ctes and _BARE.match(name):
            return set()
        raise _refuse(f"unknown table {name!r}: name lake tables as zone.name")
    return {f"{schema}.{name}"}


def _check_function(node: dict[str, Any]) -> None:
    name = str(node.get("function_name", "")).lower()
    if node.get("schema") or node.get("catalog"):
        raise _refuse(f"function {node.get('schema')}.{name}() is not allowed: call functions by name")
    if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
        raise _refuse(f"function {name}() is not allowed: queries read lake tables only")


__all__ = ["SqlRefused", "vet"]
