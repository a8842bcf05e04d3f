"""Turning loose rows (dicts from a database cursor or JSON messages) into one Arrow table.

``pa.Table.from_pylist`` takes its column names from the first row and fails on a column whose
values mix types; real feeds do both (an optional field, ``"12.5"`` next to ``12.5``). Here the
columns are the union of all keys in first-seen order, and a column that does not convert as it
is becomes text, which the connector's mapping casts per field (a bad value is then quarantined
with its field name, never a crash of the whole batch).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa

from sciti.acquire.formats.tabular import normalise_name

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SQL_WORDS = {"null", "true", "false", "current_date", "current_timestamp"}


def cell_text(value: Any) -> str | None:
    """One value as text: JSON for nested values, ``true``/``false`` for booleans."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def rows_to_table(rows: Iterable[Mapping[str, Any]], *, as_text: bool = False) -> pa.Table:
    """An Arrow table of ``rows``; ``as_text`` makes every column text (for JSON payloads)."""
    rows = list(rows)
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        columns[name] = _text_array(values) if as_text else _array(values)
    return pa.table(columns) if columns else pa.table({"empty": pa.nulls(len(rows), pa.string())})


def _text_array(values: list[Any]) -> pa.Array:
    return pa.array([cell_text(v) for v in values], pa.string())


def _array(values: list[Any]) -> pa.Array:
    if any(isinstance(v, dict | list | bytes) for v in values):
        return _text_array(values)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _text_array(values)


def with_mapped_columns(table: pa.Table, connector: Any) -> pa.Table:
    """Add, as empty text, every column the connector's outputs refer to that no row carried.

    A JSON message may leave out an optional field; when no message of a flush has it, the
    column would be missing altogether and the runner would reject the whole unit. A column
    counts wherever the outputs name it: a field that is just the name, inside an expression
    (``CASE WHEN kind = 'event' THEN event ...``) or in ``where:``. DuckDB's own parser finds
    them, so quoting, string literals and functions are read as DuckDB reads them.
    """
    have = {normalise_name(name) for name in table.column_names}
    for name in referenced_columns(connector):
        if normalise_name(name) not in have:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
            have.add(normalise_name(name))
    return table


def referenced_columns(connector: Any) -> list[str]:
    """Source column names the connector's ``outputs`` refer to (fields and ``where``), in order."""
    exprs = []
    for out in getattr(connector, "outputs", []) or []:
        exprs += [e for e in out.fields.values() if e and e.strip()]
        if getattr(out, "where", None):
            exprs.append(out.where)
    return _columns_of(tuple(exprs))


@lru_cache(maxsize=256)
def _columns_of(exprs: tuple[str, ...]) -> list[str]:
    names: dict[str, None] = {}
    con = duckdb.connect(":memory:")
    try:
        for expr in exprs:
            if _PLAIN.fullmatch(expr.strip()):  # the common case needs no parser
                if expr.strip().lower() not in _SQL_WORDS:
                    names[expr.strip()] = None
                continue
            found = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {expr} FROM src"]).fetchone()
            tree = json.loads(found[0]) if found else {}
            if tree.get("error"):  # the mapping step reports a broken expression with its own words
                continue
            names.update(dict.fromkeys(_column_refs(tree)))
    finally:
        con.close()
    return list(names)


def _column_refs(node: Any) -> Iterator[str]:
    """The last part of every COLUMN_REF in a ``json_serialize_sql`` tree (``t.col`` -> ``col``)."""
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF" and node.get("column_names"):
            yield node["column_names"][-1]
            return
        for value in node.values():
            yield from _column_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _column_refs(value)
