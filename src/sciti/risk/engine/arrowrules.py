"""Rule conditions evaluated on Arrow columns, with the SQL meaning (three-valued, NULL-safe).

The rules package compiles each condition to a DuckDB expression; running 200 of them over a table
re-casts every column for every rule. Here the same condition tree is evaluated with Arrow compute
kernels (Kleene logic for and/or/not, exactly SQL's), each column normalised once per table and
shared by all rules: several times faster for a large rule set. A condition or column this module
does not handle exactly as the SQL does (e.g. a number stored as text, a timestamp read as a date)
raises :class:`Unsupported` and that rule stays in the DuckDB statement, so the answer is always the
SQL one. tests/risk/engine/test_arrowrules.py checks both agree rule by rule.
"""

from __future__ import annotations

from dataclasses import fields
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_COMPARE = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_ARITH = {"+": pc.add, "-": pc.subtract, "*": pc.multiply, "/": pc.divide}
_LITERAL_TYPES = {"number": pa.float64(), "text": pa.string(), "bool": pa.bool_(), "date": pa.date32()}


class Unsupported(Exception):
    """This rule (or a column it reads) is left to DuckDB."""


def condition_of(rule: Any) -> tuple[Any, dict[str, str]]:
    """(condition tree, name -> type) of a compiled rule, through the rules package's own parser."""
    definition = getattr(rule, "definition", None)
    if definition is None or getattr(rule, "scope_sql", None) is None:
        raise Unsupported("not a compiled rule")
    from sciti.risk.rules.columns import column_types
    from sciti.risk.rules.condition import referenced_types
    from sciti.risk.rules.definition import compile_condition

    columns = column_types(rule.kind)
    tree = compile_condition(definition.when, columns)
    return tree, referenced_types(tree, columns)


class TableRules:
    """Evaluates conditions over one table; normalised columns and sub-conditions are shared by rules.

    Rule sets repeat themselves ("net_mass_kg > 1000", "trader_declarations_365d > 5" in dozens of
    rules): each distinct sub-expression (same shape, names, types and constants, wherever it is
    written) is computed once per table.
    """

    def __init__(self, table: pa.Table, shapes: dict[tuple[int, int], tuple[Any, Any, Any]] | None = None):
        self.table = table
        self.n = table.num_rows
        self._columns: dict[tuple[str, str], Any] = {}
        self._done: dict[Any, Any] = {}
        # Each node's sharing key, kept by the rule set from table to table (the trees do not change).
        self._shapes = {} if shapes is None else shapes

    def _key(self, n: Any, types: dict[str, str]) -> Any:
        found = self._shapes.get((id(n), id(types)))
        if found is None or found[0] is not n or found[1] is not types:  # (a copied rule set)
            found = (n, types, _shape(n, types))  # the node and types are held so their ids stay theirs
            self._shapes[(id(n), id(types))] = found
        return found[2]

    def hits(self, rule: Any, tree: Any, types: dict[str, str]) -> np.ndarray:
        """Rows where the condition is TRUE and the record is in the rule's scope."""
        cond = self.condition(tree, types)
        for field, allowed in _scope_of(rule):
            col = self.table[field] if field in self.table.column_names else None
            if col is None or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                raise Unsupported(f"scope field {field}")
            cond &= self._mask(pc.is_in(col, value_set=pa.array(sorted(allowed), col.type)))
        return cond

    def condition(self, tree: Any, types: dict[str, str]) -> np.ndarray:
        """Rows where the condition tree is TRUE (FALSE and unknown are both False)."""
        return self._mask(self._eval(tree, types))

    def _mask(self, value: Any) -> np.ndarray:
        if isinstance(value, pa.Scalar):
            return np.full(self.n, value.as_py() is True)
        chunks = value.chunks if isinstance(value, pa.ChunkedArray) else [value]
        if not pa.types.is_boolean(value.type) or not chunks:
            return np.asarray(pc.fill_null(value, False).to_numpy(zero_copy_only=False), dtype=bool)
        return _true_bits(chunks[0]) if len(chunks) == 1 else np.concatenate([_true_bits(c) for c in chunks])

    def column(self, name: str, kind: str) -> Any:
        key = (name, kind)
        if key not in self._columns:
            self._columns[key] = self._normalised(name, kind)
        return self._columns[key]

    def _normalised(self, name: str, kind: str) -> Any:
        if name not in self.table.column_names:
            raise Unsupported(f"no column {name}")
        col = self.table[name]
        t = col.type
        if pa.types.is_null(t):
            return pa.nulls(self.n, _LITERAL_TYPES[kind])
        if kind == "number":
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
                raise Unsupported(f"{name} is {t}, not a number type")
            x = pc.cast(col, pa.float64())
            return pc.if_else(pc.is_nan(x), pa.scalar(None, pa.float64()), x)  # NaN is missing
        if kind == "date" and pa.types.is_date32(t):
            return col
        if kind == "bool" and pa.types.is_boolean(t):
            return col
        if kind == "text" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            return col
        raise Unsupported(f"{name} is {t}, read as {kind}")

    def _eval(self, n: Any, types: dict[str, str]) -> Any:
        from sciti.risk.rules import condition as c

        if isinstance(n, c.Literal | c.Name):
            return self._eval_node(n, types)
        key = self._key(n, types)
        if key not in self._done:
            self._done[key] = self._eval_node(n, types)
        return self._done[key]

    def _eval_node(self, n: Any, types: dict[str, str]) -> Any:
        from sciti.risk.rules import condition as c

        ev = self._eval
        if isinstance(n, c.Literal):
            value = float(n.value) if n.type == "number" else n.value
            return pa.scalar(value, _LITERAL_TYPES[n.type])
        if isinstance(n, c.Name):
            return self.column(n.name, types[n.name])
        if isinstance(n, c.Neg):
            return pc.negate(ev(n.operand, types))
        if isinstance(n, c.Arith):
            right = ev(n.right, types)
            if n.op == "/":  # division by zero is missing, as NULLIF(x, 0) in the SQL
                right = pc.if_else(pc.equal(right, 0.0), pa.scalar(None, pa.float64()), right)
            return _ARITH[n.op](ev(n.left, types), right)
        if isinstance(n, c.Compare):
            return _COMPARE[n.op](ev(n.left, types), ev(n.right, types))
        if isinstance(n, c.InList):
            x = ev(n.operand, types)
            if isinstance(x, pa.Scalar) or not n.values:
                raise Unsupported("IN over a constant")
            kind = n.values[0].type
            values = [float(v.value) if kind == "number" else v.value for v in n.values]
            found = pc.is_in(x, value_set=pa.array(values, _LITERAL_TYPES[kind]))
            found = pc.if_else(pc.is_null(x), pa.scalar(None, pa.bool_()), found)  # NULL IN (...) is NULL
            return pc.invert(found) if n.negated else found
        if isinstance(n, c.Between):
            x = ev(n.operand, types)
            return pc.and_kleene(pc.greater_equal(x, ev(n.low, types)), pc.less_equal(x, ev(n.high, types)))
        if isinstance(n, c.IsMissing):
            x = ev(n.operand, types)
            return pc.is_valid(x) if n.negated else pc.is_null(x)
        if isinstance(n, c.TextTest):
            x = ev(n.operand, types)
            if isinstance(x, pa.Scalar):
                raise Unsupported("text test on a constant")
            key = ("lower", self._key(n.operand, types))  # one lower-casing per column, for every test on it
            if key not in self._done:
                self._done[key] = pc.utf8_lower(x)
            lowered = self._done[key]
            if n.op == "starts_with":
                return pc.starts_with(lowered, pattern=n.text.lower())
            return pc.match_substring(lowered, pattern=n.text.lower())
        if isinstance(n, c.BoolOp):
            fn = pc.and_kleene if n.op == "and" else pc.or_kleene
            return reduce(fn, (ev(i, types) for i in n.items))
        if isinstance(n, c.Not):
            return pc.invert(ev(n.operand, types))
        raise Unsupported(f"node {type(n).__name__}")


def _true_bits(arr: pa.Array) -> np.ndarray:
    """Rows of a boolean array that are TRUE (not FALSE, not NULL), read from its bits."""
    buffers = arr.buffers()
    if len(arr) == 0 or len(buffers) < 2 or buffers[1] is None:
        return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)
    validity, data = buffers[:2]
    end = arr.offset + len(arr)
    nbytes = (end + 7) // 8
    bits = np.frombuffer(data, dtype=np.uint8, count=nbytes)
    if validity is not None and arr.null_count:
        bits = bits & np.frombuffer(validity, dtype=np.uint8, count=nbytes)
    return np.unpackbits(bits, count=end, bitorder="little")[arr.offset :].view(bool)


def _shape(n: Any, types: dict[str, str]) -> Any:
    """A node's identity for sharing: its kind and fields without the source position."""
    from sciti.risk.rules import condition as c

    if isinstance(n, c.Name):
        return ("name", n.name, types[n.name])
    if isinstance(n, c.Literal):
        return ("literal", n.type, type(n.value).__name__, n.value)
    if isinstance(n, tuple):
        return tuple(_shape(x, types) for x in n)
    if not isinstance(n, c.Node):
        return n
    return (
        type(n).__name__,
        *(_shape(getattr(n, f.name), types) for f in fields(n) if f.name not in _POSITION),
    )


_POSITION = frozenset({"line", "column"})


def _scope_of(rule: Any) -> list[tuple[str, frozenset[str]]]:
    scope = getattr(rule.definition, "scope", None) or {}
    if not scope:
        return []
    from sciti.risk.rules.columns import SCOPE_FIELDS

    fields = SCOPE_FIELDS.get(rule.kind, {})
    return [(fields[key], frozenset(str(v) for v in values)) for key, values in scope.items()]


__all__ = ["TableRules", "Unsupported", "condition_of"]
