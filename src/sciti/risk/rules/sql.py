"""Compile a condition to one DuckDB boolean expression with the same three-valued meaning as python.py.

Values are normalised the way the Python side normalises them: numbers are compared as DOUBLE (NaN
counts as missing), dates as DATE (timestamps in UTC), text exactly, except ``starts with`` and
``contains`` which ignore case. Division by zero is missing, not an error.
"""

from __future__ import annotations

from sciti.risk.rules.condition import (
    Arith,
    Between,
    BoolOp,
    Compare,
    InList,
    IsMissing,
    Literal,
    Name,
    Neg,
    Node,
    Not,
    TextTest,
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def literal_sql(lit: Literal) -> str:
    if lit.type == "number":
        return f"CAST({float(lit.value)!r} AS DOUBLE)"
    if lit.type == "text":
        return quote_text(lit.value)
    if lit.type == "bool":
        return "TRUE" if lit.value else "FALSE"
    return f"DATE '{lit.value.isoformat()}'"


def column_sql(name: str, kind: str, table: str | None = None) -> str:
    ref = quote_ident(name) if table is None else f"{table}.{quote_ident(name)}"
    if kind == "number":
        # TRY_CAST: a value that is not a number is missing (the Python side does the same).
        return f"NULLIF(TRY_CAST({ref} AS DOUBLE), CAST('NaN' AS DOUBLE))"
    if kind == "date":
        return f"TRY_CAST({ref} AS DATE)"
    if kind == "bool":
        return f"TRY_CAST({ref} AS BOOLEAN)"
    return f"CAST({ref} AS VARCHAR)"


def condition_sql(node: Node, types: dict[str, str], table: str | None = None) -> str:
    """A SQL boolean expression that is TRUE, FALSE or NULL exactly when the Python one is."""

    def sql(n: Node) -> str:
        if isinstance(n, Literal):
            return literal_sql(n)
        if isinstance(n, Name):
            return column_sql(n.name, types[n.name], table)
        if isinstance(n, Neg):
            return f"(- {sql(n.operand)})"
        if isinstance(n, Arith):
            right = sql(n.right)
            if n.op == "/":
                right = f"NULLIF({right}, CAST(0 AS DOUBLE))"
            return f"({sql(n.left)} {n.op} {right})"
        if isinstance(n, Compare):
            return f"({sql(n.left)} {n.op} {sql(n.right)})"
        if isinstance(n, InList):
            values = ", ".join(literal_sql(v) for v in n.values)
            return f"({sql(n.operand)} {'NOT IN' if n.negated else 'IN'} ({values}))"
        if isinstance(n, Between):
            # Spelled out (not BETWEEN) so each bound's unknown-ness combines exactly as in Kleene logic.
            value = sql(n.operand)
            return f"(({value} >= {sql(n.low)}) AND ({value} <= {sql(n.high)}))"
        if isinstance(n, IsMissing):
            return f"({sql(n.operand)} IS {'NOT ' if n.negated else ''}NULL)"
        if isinstance(n, TextTest):
            fn = "starts_with" if n.op == "starts_with" else "contains"
            return f"{fn}(lower({sql(n.operand)}), {quote_text(n.text.lower())})"
        if isinstance(n, BoolOp):
            return "(" + f" {n.op.upper()} ".join(sql(i) for i in n.items) + ")"
        if isinstance(n, Not):
            return f"(NOT {sql(n.operand)})"
        raise TypeError(f"unknown node {n!r}")

    return sql(node)


def in_list_sql(column: str, values: tuple[str, ...], table: str | None = None) -> str:
    ref = quote_ident(column) if table is None else f"{table}.{quote_ident(column)}"
    return f"(CAST({ref} AS VARCHAR) IN ({', '.join(quote_text(v) for v in values)}))"


__all__ = ["column_sql", "condition_sql", "in_list_sql", "literal_sql", "quote_ident", "quote_text"]
