"""Compile a condition to a Python callable over one record (a dict): True, False or None (unknown).

Closures, built once per rule version: no parsing or tree walking per record. The meaning is the
SQL one (see sql.py): a missing name, a NaN, a value of the wrong type or a division by zero is
unknown; ``and``/``or``/``not`` follow Kleene's tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

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

Record = dict[str, Any]
Eval = Callable[[Record], Any]


def as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return as_date(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    if type(value).__name__ == "bool_":  # numpy
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        return (
            True
            if word in ("true", "t", "1", "yes", "y")
            else False
            if word in ("false", "f", "0", "no", "n")
            else None
        )
    return None


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int | float):
        return str(value)
    return str(value)


NORMALISE: dict[str, Callable[[Any], Any]] = {
    "number": as_number,
    "date": as_date,
    "bool": as_bool,
    "text": as_text,
}

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _arith(op: str, a: float, b: float) -> float | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def kleene_and(values: list[Any]) -> bool | None:
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def condition_python(node: Node, types: dict[str, str]) -> Eval:
    """A function record -> True / False / None with the SQL three-valued meaning."""

    def build(n: Node) -> Eval:
        if isinstance(n, Literal):
            value = float(n.value) if n.type == "number" else n.value
            return lambda r: value
        if isinstance(n, Name):
            key, norm = n.name, NORMALISE[types[n.name]]
            return lambda r: norm(r.get(key))
        if isinstance(n, Neg):
            inner = build(n.operand)

            def neg(r: Record) -> Any:
                v = inner(r)
                return None if v is None else -v

            return neg
        if isinstance(n, Arith):
            left, right, op = build(n.left), build(n.right), n.op

            def arith(r: Record) -> Any:
                a, b = left(r), right(r)
                return None if a is None or b is None else _arith(op, a, b)

            return arith
        if isinstance(n, Compare):
            left, right, cmp = build(n.left), build(n.right), _ORDER[n.op]

            def compare(r: Record) -> Any:
                a, b = left(r), right(r)
                return None if a is None or b is None else cmp(a, b)

            return compare
        if isinstance(n, InList):
            operand = build(n.operand)
            wanted = frozenset(float(v.value) if v.type == "number" else v.value for v in n.values)
            negated = n.negated

            def in_list(r: Record) -> Any:
                v = operand(r)
                return None if v is None else (v in wanted) != negated

            return in_list
        if isinstance(n, Between):
            value, low, high = build(n.operand), build(n.low), build(n.high)

            def between(r: Record) -> Any:
                v, lo, hi = value(r), low(r), high(r)
                a = None if v is None or lo is None else v >= lo
                b = None if v is None or hi is None else v <= hi
                return kleene_and([a, b])

            return between
        if isinstance(n, IsMissing):
            operand, negated = build(n.operand), n.negated
            return lambda r: (operand(r) is None) != negated
        if isinstance(n, TextTest):
            operand, needle = build(n.operand), n.text.lower()
            starts = n.op == "starts_with"

            def text_test(r: Record) -> Any:
                v = operand(r)
                if v is None:
                    return None
                v = v.lower()
                return v.startswith(needle) if starts else needle in v

            return text_test
        if isinstance(n, BoolOp):
            items = [build(i) for i in n.items]
            if n.op == "and":
                return lambda r: kleene_and([f(r) for f in items])

            def kleene_or(r: Record) -> Any:
                unknown = False
                for f in items:
                    v = f(r)
                    if v is True:
                        return True
                    if v is None:
                        unknown = True
                return None if unknown else False

            return kleene_or
        if isinstance(n, Not):
            operand = build(n.operand)

            def negate(r: Record) -> Any:
                v = operand(r)
                return None if v is None else not v

            return negate
        raise TypeError(f"unknown node {n!r}")

    return build(node)


__all__ = ["NORMALISE", "as_bool", "as_date", "as_number", "as_text", "condition_python", "kleene_and"]
