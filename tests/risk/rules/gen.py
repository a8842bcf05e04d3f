"""Seeded generators of random conditions and records for the SQL/Python parity tests."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

# A slice of the declaration subject: every type, and every storage form of a number and a date.
COLUMNS: dict[str, tuple[str, pa.DataType]] = {
    "item_price": ("number", pa.decimal128(18, 4)),
    "net_mass_kg": ("number", pa.float64()),
    "goods_item_count": ("number", pa.int64()),
    "unit_value_ratio": ("number", pa.float64()),
    "hs_code": ("text", pa.string()),
    "country_of_origin": ("text", pa.string()),
    "office_code": ("text", pa.string()),
    "description": ("text", pa.string()),
    "acceptance_date": ("date", pa.date32()),
    "issue_datetime": ("date", pa.timestamp("us", tz="UTC")),
    "aeo": ("bool", pa.bool_()),
    "watchlist_hit": ("bool", pa.bool_()),
}
TYPES = {name: t for name, (t, _) in COLUMNS.items()}

NUMBERS = [0.0, 1.0, -1.0, 0.5, 2.5, 10.0, 100.0, 1000.0, 0.33, 3.0]
TEXTS = ["CN", "HK", "VN", "851712", "8517", "850440", "Battery pack", "LITHIUM cells", "", "cn", "Ärger"]
DATES = [date(2026, 1, d) for d in (1, 2, 15, 31)] + [date(2025, 12, 31)]


def _number_value(rng: random.Random, arrow: pa.DataType) -> Any:
    if rng.random() < 0.15:
        return None
    if arrow == pa.int64():
        return rng.choice([0, 1, 2, 3, 10, 100])
    x = rng.choice(NUMBERS + [rng.uniform(-5, 1500)])
    if arrow == pa.float64():
        return math.nan if rng.random() < 0.05 else x
    return Decimal(f"{x:.4f}")


def random_table(rng: random.Random, n: int) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for _ in range(n):
        for name, (kind, arrow) in COLUMNS.items():
            if kind == "number":
                v: Any = _number_value(rng, arrow)
            elif kind == "text":
                v = None if rng.random() < 0.15 else rng.choice(TEXTS)
            elif kind == "bool":
                v = None if rng.random() < 0.2 else rng.random() < 0.5
            elif arrow == pa.date32():
                v = None if rng.random() < 0.15 else rng.choice(DATES)
            else:
                v = (
                    None
                    if rng.random() < 0.15
                    else datetime.combine(rng.choice(DATES), datetime.min.time(), UTC)
                    + timedelta(hours=rng.choice([0, 1, 23]), minutes=rng.choice([0, 59]))
                )
            cols[name].append(v)
    return pa.table({name: pa.array(vals, type=COLUMNS[name][1]) for name, vals in cols.items()})


def _literal(rng: random.Random, kind: str) -> str:
    if kind == "number":
        x = rng.choice(NUMBERS)
        return rng.choice([f"{x:g}", f"{x * 100:g}%"]) if x >= 0 else f"{x:g}"
    if kind == "text":
        s = rng.choice(TEXTS)
        return "'" + s.replace("'", "\\'") + "'"
    if kind == "date":
        return f"date '{rng.choice(DATES).isoformat()}'"
    return rng.choice(["true", "false"])


def _order(literal: str) -> float | str:
    """A literal's value, to put between's bounds in order (a date's text sorts as its date)."""
    if literal.startswith("date"):
        return literal
    return float(literal[:-1]) / 100 if literal.endswith("%") else float(literal)


def _names(kind: str) -> list[str]:
    return [n for n, t in TYPES.items() if t == kind]


def _number_expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.6:
        return rng.choice(_names("number")) if rng.random() < 0.7 else _literal(rng, "number")
    op = rng.choice(["+", "-", "*", "/"])
    return f"({_number_expr(rng, depth - 1)} {op} {_number_expr(rng, depth - 1)})"


def _operand(rng: random.Random, kind: str, depth: int) -> str:
    return _number_expr(rng, depth) if kind == "number" else rng.choice(_names(kind))


def random_condition(rng: random.Random, depth: int = 3) -> str:
    if depth <= 0 or rng.random() < 0.35:
        return _predicate(rng)
    choice = rng.random()
    if choice < 0.4:
        return f"({random_condition(rng, depth - 1)} and {random_condition(rng, depth - 1)})"
    if choice < 0.8:
        return f"({random_condition(rng, depth - 1)} or {random_condition(rng, depth - 1)})"
    return f"not ({random_condition(rng, depth - 1)})"


def _predicate(rng: random.Random) -> str:
    kind = rng.choice(["number", "number", "text", "date", "bool"])
    left = _operand(rng, kind, 2)
    form = rng.random()
    if kind == "bool":
        return rng.choice([left, f"{left} = {_literal(rng, 'bool')}", f"{left} is missing", f"not {left}"])
    if form < 0.45:
        ops = ["=", "!=", "<", "<=", ">", ">="]
        right = _operand(rng, kind, 1) if rng.random() < 0.3 else _literal(rng, kind)
        return f"{left} {rng.choice(ops)} {right}"
    if form < 0.6 and kind in ("number", "date"):
        a, b = sorted(
            [_literal(rng, kind), _literal(rng, kind)], key=_order
        )  # bounds in the wrong order are refused
        return f"{left} between {a} and {b}"
    if form < 0.75:
        values = ", ".join(_literal(rng, kind) for _ in range(rng.randint(1, 4)))
        return f"{left} {'not in' if rng.random() < 0.3 else 'in'} ({values})"
    if form < 0.9 and kind == "text":
        needle = rng.choice(["c", "CN", "85", "bat", "lith", "ä", ""])
        return f"{left} {rng.choice(['starts with', 'contains'])} '{needle}'"
    return f"{left} is {'not ' if rng.random() < 0.5 else ''}missing"


__all__ = ["COLUMNS", "TYPES", "random_condition", "random_table"]
