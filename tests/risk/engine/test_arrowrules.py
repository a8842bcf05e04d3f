"""Conditions run on Arrow columns give exactly the DuckDB answer, rule by rule and record by record.

Generated conditions (every operator, nesting, arithmetic, missing values, NaN, decimals, timestamps,
case) over generated records, reusing the rules package's parity generator; then whole rule sets
through ``RuleSet.hit_matrix`` (Arrow, with DuckDB for what Arrow leaves) against the all-SQL matrix.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from sciti.risk.engine.arrowrules import TableRules, Unsupported
from sciti.risk.engine.ruleset import RuleSet
from sciti.risk.rules import compile_rule, parse_rule
from sciti.risk.rules.condition import check_types, parse_condition, referenced_types
from tests.risk.rules.gen import TYPES, random_condition, random_table
from tests.risk.rules.test_parity import sql_values


@pytest.mark.parametrize("seed", [11, 12])
def test_generated_conditions_agree_with_sql(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, 1500)
    ev = TableRules(table)
    conditions = [random_condition(rng) for _ in range(120)]
    trees = []
    for text in conditions:
        tree = parse_condition(text)
        check_types(tree, TYPES)
        trees.append(tree)
    from_sql = sql_values(table, [f"COALESCE(({_sql(t)}), FALSE)" for t in trees])
    handled = 0
    for text, tree, expected in zip(conditions, trees, from_sql, strict=True):
        try:
            got = ev.condition(tree, referenced_types(tree, TYPES))
        except Unsupported:
            continue  # left to DuckDB (e.g. a timestamp read as a date)
        handled += 1
        bad = np.flatnonzero(got != np.asarray(expected, dtype=bool))
        assert bad.size == 0, (text, bad[:3].tolist(), table.slice(int(bad[0]), 1).to_pylist())
    assert handled > len(conditions) // 3  # the fast path is really taken


def _sql(tree) -> str:
    from sciti.risk.rules.sql import condition_sql

    return condition_sql(tree, referenced_types(tree, TYPES))


def _kcs_like(n: int) -> pa.Table:
    rng = random.Random(5)
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "duty_rate": [None if i % 13 == 0 else rng.choice([0.0, 5.0, 8.0, 20.0, 35.0]) for i in range(n)],
            "net_mass_kg": [float("nan") if i % 17 == 0 else rng.uniform(0, 5000) for i in range(n)],
            "hs_code": [rng.choice(["851712", "8517", "610910", None, "Battery"]) for _ in range(n)],
            "country_of_origin": [rng.choice(["CN", "VN", "cn", None, "DE"]) for _ in range(n)],
            "office_code": [rng.choice(["AAA", "BBB", None]) for _ in range(n)],
        }
    )


RULES = [
    ("duty_rate > 10 and net_mass_kg > 1000", None),
    ("not (duty_rate between 1 and 20)", None),
    ("country_of_origin in ('CN', 'VN') or hs_code starts with '85'", {"offices": ["AAA"]}),
    ("net_mass_kg is missing or hs_code contains 'batt'", None),
    ("duty_rate / (net_mass_kg - net_mass_kg) > 1", None),  # division by zero is missing
    ("country_of_origin not in ('DE') and -duty_rate < -5", None),
]


def test_rule_set_matrix_equals_all_sql() -> None:
    rules = []
    for i, (when, scope) in enumerate(RULES):
        doc = {"id": f"T-{i}", "title": "t", "kind": "declaration", "when": when, "weight": 10, "reason": "r"}
        if scope:
            doc["scope"] = scope
        rules.append(compile_rule(parse_rule(doc), 1))
    legacy = SimpleNamespace(  # a rule without a condition tree or scope_sql: DuckDB, scope in Python
        rule_id="L", version=1, weight=5.0, lane=None, sql="duty_rate >= 20", in_scope=lambda r: True
    )
    rs = RuleSet("declaration", [*rules, legacy])
    table = _kcs_like(3000)
    fast, reference = rs.hit_matrix(table), rs.sql_hit_matrix(table)
    assert fast.shape == (3000, len(RULES) + 1)
    assert (fast == reference).all()
    hit_some = fast.any(axis=0).tolist()
    assert hit_some == [True, True, True, True, False, True, True]  # x / 0 is missing: never true
    assert not fast.all(axis=0).any()


def test_repeated_sub_conditions_are_computed_once_and_give_the_same_answer() -> None:
    rng = random.Random(21)
    table = random_table(rng, 800)
    texts = [
        "net_mass_kg > 1000 and country_of_origin = 'CN'",
        "country_of_origin = 'CN' or net_mass_kg > 1000",
        "not (net_mass_kg > 1000) and   country_of_origin = 'CN'",  # same parts, other positions
        "net_mass_kg > 1000.5 and country_of_origin = 'CN'",  # another constant: not shared
    ]
    shared = TableRules(table)
    trees = [parse_condition(t) for t in texts]
    got = [shared.condition(t, referenced_types(t, TYPES)) for t in trees]
    for text, tree, mask in zip(texts, trees, got, strict=True):
        alone = TableRules(table).condition(tree, referenced_types(tree, TYPES))
        assert np.array_equal(mask, alone), text
    # 3 distinct comparisons, 4 distinct and/or nodes (one per condition), 1 not
    assert len(shared._done) == 3 + 4 + 1
