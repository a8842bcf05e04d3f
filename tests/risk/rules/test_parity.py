"""The SQL and the Python compilation of a condition agree on every record: TRUE, FALSE and unknown.

Hundreds of generated conditions (every operator, nesting, arithmetic, missing values, NaN, decimals,
timestamps, case) over thousands of generated records, plus the starter rules and generated rules
over real KCS declarations.
"""

from __future__ import annotations

import csv
import random

import duckdb
import pyarrow as pa
import pytest

from sciti.risk.rules import column_types, compile_python, compile_sql, load_starter_rules, parse_rule
from sciti.risk.rules.condition import Literal, Node, check_types, parse_condition, referenced_types
from sciti.risk.rules.python import condition_python
from sciti.risk.rules.sql import condition_sql
from tests.risk.rules.gen import TYPES, random_condition, random_table


def sql_values(table: pa.Table, expressions: list[str]) -> list[list[object]]:
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("t", table)
        out: list[list[object]] = []
        for start in range(0, len(expressions), 40):
            chunk = expressions[start : start + 40]
            cols = ", ".join(f"({e}) AS c{i}" for i, e in enumerate(chunk))
            result = conn.execute(f"SELECT {cols} FROM t").fetchall()  # noqa: S608
            out += [[row[i] for row in result] for i in range(len(chunk))]
        return out
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_conditions_agree_three_valued(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, 2000)
    records = table.to_pylist()
    conditions = [random_condition(rng) for _ in range(150)]
    trees = []
    for text in conditions:
        tree = parse_condition(text)
        check_types(tree, TYPES)
        trees.append(tree)
    expressions = [condition_sql(t, referenced_types(t, TYPES)) for t in trees]
    from_sql = sql_values(table, expressions)
    outcomes = set()
    for text, tree, sql_column in zip(conditions, trees, from_sql, strict=True):
        fn = condition_python(tree, referenced_types(tree, TYPES))
        py_column = [fn(r) for r in records]
        mismatches = [(i, s, p) for i, (s, p) in enumerate(zip(sql_column, py_column, strict=True)) if s != p]
        assert not mismatches, (text, mismatches[:3], records[mismatches[0][0]])
        outcomes |= set(py_column)
    assert outcomes == {True, False, None}  # the generator exercises all three values


def test_starter_rules_compile_to_agreeing_sql_and_python() -> None:
    """Every shipped rule compiles; on rows made of its own literals both sides hit the same records."""
    rules = load_starter_rules()
    assert {r.kind for r in rules} >= {"declaration", "currency_declaration", "road_cargo_info"}
    rng = random.Random(5)
    for rule in rules:
        fn = compile_python(rule)
        tree = parse_condition(rule.when)
        types = referenced_types(tree, column_types(rule.kind))
        literals = _literals(tree)
        rows = [_random_row(rng, types, literals) for _ in range(3000)]
        (column,) = sql_values(pa.Table.from_pylist(rows), [compile_sql(rule)])
        assert column == [fn(r) for r in rows], rule.id
        assert any(column), f"{rule.id} never hits generated data: the generator or the rule is wrong"


def _literals(node, out: dict[str, set] | None = None) -> dict[str, list]:
    """Values the condition mentions, by type (plus one other of each): the generator draws around them."""
    found = out if out is not None else {"number": {0.0}, "text": {"other"}, "bool": {True, False}}
    if isinstance(node, Literal):
        found.setdefault(node.type, set()).add(node.value)
    for value in vars(node).values():
        for child in value if isinstance(value, tuple) else (value,):
            if isinstance(child, Node):
                _literals(child, found)
    return {k: sorted(v, key=str) for k, v in found.items()}


def _random_row(rng: random.Random, types: dict[str, str], literals: dict[str, list]) -> dict[str, object]:
    row: dict[str, object] = {}
    for name, t in types.items():
        if rng.random() < 0.1:
            row[name] = None
        elif t == "number":
            row[name] = rng.choice(literals["number"]) * rng.choice([0.5, 0.99, 1.0, 1.01, 2.0])
        else:
            row[name] = rng.choice(literals.get(t) or [None])
    return row


KCS_COLUMNS = {
    "Office ID": "office_code",
    "HS6 Code": "hs_code",
    "Country of Origin": "country_of_origin",
    "Country of Departure": "country_of_dispatch",
    "Net Mass": "net_mass_kg",
    "Item Price": "item_price",
    "Tax Rate": "duty_rate",
    "Mode of Transport": "mode_of_transport",
    "Date": "acceptance_date",
}


def test_generated_rules_agree_on_kcs_declarations(shared_data) -> None:
    with (shared_data / "kcs" / "valid.csv").open(encoding="utf-8", newline="") as fh:
        raw = list(csv.DictReader(fh))[:3000]
    rows = []
    for r in raw:
        row: dict[str, object] = {}
        for src, name in KCS_COLUMNS.items():
            v = r[src].strip() or None
            if name in ("net_mass_kg", "item_price", "duty_rate") and v is not None:
                row[name] = float(v)
            elif name == "acceptance_date" and v is not None:
                from datetime import date

                row[name] = date.fromisoformat(v)
            else:
                row[name] = v
        rows.append(row)
    table = pa.Table.from_pylist(rows)
    rng = random.Random(11)
    chapters = sorted({r["hs_code"][:2] for r in rows if r["hs_code"]})[:8]
    origins = sorted({r["country_of_origin"] for r in rows if r["country_of_origin"]})[:6]
    texts = []
    for _ in range(60):
        parts = [
            f"net_mass_kg {rng.choice(['>', '<', '>='])} {rng.choice([1, 10, 100, 1000, 5000])}",
            f"item_price / net_mass_kg < {rng.choice([0.5, 2, 10, 50, 200])}",
            f"hs_code starts with '{rng.choice(chapters)}'",
            f"country_of_origin in ({', '.join(repr(o) for o in rng.sample(origins, 2))})",
            f"duty_rate between {rng.choice([0, 3, 8])} and {rng.choice([8, 20, 50])}",
            "country_of_dispatch != country_of_origin",
            f"acceptance_date >= date '2021-0{rng.choice([1, 2, 3])}-1{rng.choice([0, 5])}'",
            "office_code is missing",
        ]
        picked = rng.sample(parts, rng.randint(1, 3))
        texts.append(f" {rng.choice(['and', 'or'])} ".join(picked))
    rules = [
        parse_rule(
            {"id": f"R{i}", "title": "t", "kind": "declaration", "when": t, "weight": 10, "reason": "r"}
        )
        for i, t in enumerate(texts)
    ]
    columns = sql_values(table, [compile_sql(r) for r in rules])
    total_hits = 0
    for rule, column in zip(rules, columns, strict=True):
        fn = compile_python(rule)
        assert column == [fn(r) for r in rows], rule.when
        total_hits += sum(column)
    assert 0 < total_hits < len(rows) * len(rules)
