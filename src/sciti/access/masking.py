"""Masks for personal fields, as DuckDB SQL expressions that keep the column's type.

The policy (``data/policy.yaml``, ``masking:``) picks a method per field name, else per type:

- ``initials``: each word keeps its first letter, the rest become stars ('Chen Tai Man' -> 'C*** T** M**').
- ``pseudonym``: 'pn:' + the first 12 hex digits of SHA-256(salt + value). The salt is a secret made
  for each query, so equal values give equal pseudonyms within a query (joins, counts and
  group-bys on masked identifiers work) while nothing links them across queries and no dictionary
  of known values can reverse them.
- ``year``: a date becomes 1 January of its year (the type stays DATE).
- ``redact``: '***'.  ``null``: NULL of the column's type.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from sciti.access.errors import AccessError

METHODS = ("initials", "pseudonym", "year", "redact", "null")

# Model field types (sciti.model ARROW_TYPES keys) -> DuckDB types, for typed NULLs.
DUCK_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "decimal": "DECIMAL(18,4)",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}


def new_salt() -> str:
    return secrets.token_hex(16)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def null_of(field_type: str) -> str:
    return f"CAST(NULL AS {DUCK_TYPES.get(field_type, 'VARCHAR')})"


def mask_sql(method: str, column: str, field_type: str, salt: str) -> str:
    """The SQL expression shown instead of ``column`` (of model type ``field_type``)."""
    col = _ident(column)
    if method == "null":
        return null_of(field_type)
    if method == "year":
        if field_type == "date":
            return f"make_date(year({col}), 1, 1)"
        if field_type == "timestamp":
            return f"CAST(make_date(year({col}), 1, 1) AS TIMESTAMPTZ)"
        return null_of(field_type)
    if field_type != "string":  # text masks only fit text columns; anything else is hidden
        return null_of(field_type)
    if method == "initials":
        words = f"string_split({col}, ' ')"
        letters = "lambda w: left(w, 1) || repeat('*', greatest(length(w) - 1, 0))"
        return f"array_to_string(list_transform({words}, {letters}), ' ')"
    if method == "pseudonym":
        if not all(c in "0123456789abcdef" for c in salt):
            raise AccessError("a masking salt must be hexadecimal")
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE 'pn:' || left(sha256('{salt}' || {col}), 12) END"
    if method == "redact":
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE '***' END"
    raise AccessError(f"unknown masking method {method!r}", remedy=f"use one of {', '.join(METHODS)}")


def mask_value(method: str, value: Any, field_type: str, salt: str) -> Any:
    """The same mask as :func:`mask_sql`, on one Python value (for records shown outside SQL)."""
    if value is None or method == "null":
        return None
    if method == "year":
        if isinstance(value, dt.datetime):
            return dt.datetime(value.year, 1, 1, tzinfo=value.tzinfo or dt.UTC)
        return dt.date(value.year, 1, 1) if isinstance(value, dt.date) else None
    if field_type != "string" or not isinstance(value, str):
        return None
    if method == "initials":
        return " ".join(w[:1] + "*" * max(len(w) - 1, 0) for w in value.split(" "))
    if method == "pseudonym":
        return "pn:" + hashlib.sha256((salt + value).encode("utf-8")).hexdigest()[:12]
    if method == "redact":
        return "***"
    raise AccessError(f"unknown masking method {method!r}", remedy=f"use one of {', '.join(METHODS)}")


__all__ = ["DUCK_TYPES", "METHODS", "mask_sql", "mask_value", "new_salt", "null_of"]
