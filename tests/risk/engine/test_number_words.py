"""Batch and real time spell a number alike, and a model line names the item its score is from.

The lake keeps amounts as decimals (6806.7500); real time receives them as JSON numbers (6806.75).
Both paths' words read their values through ``said`` (decision 0103), so an officer reads
"Item price is 6,806.75" whichever path assessed the record.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.risk import features
from sciti.risk.engine.decide import RowResult, decide
from sciti.risk.engine.said import said, said_row, said_table
from tests.risk.engine.test_parity import COMPARED


@pytest.mark.parametrize(
    "value",
    ["6806.7500", "34953.9000", "0.0001", "99999999999999.9999", "-12.3450", "1234567.8901", "6806.7501"],
)
def test_a_decimal_column_reads_as_the_float_real_time_receives(value: str) -> None:
    d = Decimal(value)
    table = pa.table({"item_price": pa.array([d, None], pa.decimal128(18, 4)), "n": [1, 2]})
    out = said_table(table)
    assert out.schema.field("item_price").type == pa.float64()
    assert out["item_price"].to_pylist() == [float(value), None]  # as json.loads("6806.75") gives
    assert out["n"].to_pylist() == [1, 2]
    assert said(d) == float(value) == said_row({"v": d})["v"]
    assert said_row({"v": 1.5}) == {"v": 1.5} and said("6806.7500") == "6806.7500"


def _as_sent(row: dict) -> dict:
    """A lake row as the API receives it: decimals are JSON numbers."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def test_a_decimal_amount_reads_alike_in_batch_and_real_time(kcs, assessor) -> None:
    recs = features.lake_records(kcs, "declaration")
    assert pa.types.is_decimal(recs.schema.field("item_price").type)
    assessor.explain_top = 100  # every factor the model used, the item price among them
    rows = recs.slice(0, 300).to_pylist()
    for i, row in enumerate(rows):  # amounts whose decimal text has trailing zeros
        row["item_price"] = Decimal("6806.7500") if i % 2 else Decimal("34953.9000")
    table = pa.Table.from_pylist(rows, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    said_prices = 0
    for row in rows:
        sent = _as_sent(row)
        (single,) = assessor.assess(
            "declaration", [{**sent, "record_id": row["declaration_record_id"], "items": [sent]}]
        )
        mine, other = single.to_row(), batch[single.record_id]
        for name in COMPARED:
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        assert json.loads(mine["factors"]) == json.loads(other["factors"])
        text = " ".join(other["reasons"])
        assert "6806.7500" not in text and "34953.9000" not in text, other["reasons"]
        said_prices += any(
            r.startswith(("Item price is 6,806.75 ", "Item price is 34,953.9 ")) for r in other["reasons"]
        )
    assert said_prices, "the item price drove no model score: the comparison did not cover it"


def test_the_model_line_names_the_item_whose_score_is_the_records(assessor) -> None:
    """Item 1 has the highest overall score (a rule hit), item 4 the highest model score: the model
    line names item 4 and its number, as ``model_score`` is item 4's."""
    results = [
        RowResult(row={"item_number": 1}, rule_score=45.0, model_score=26.2, direct_lane=None, hits=[]),
        RowResult(row={"item_number": 4}, rule_score=0.0, model_score=32.71, direct_lane=None, hits=[]),
        RowResult(row={"item_number": 5}, rule_score=0.0, model_score=32.71, direct_lane=None, hits=[]),
    ]
    top = max(range(len(results)), key=lambda i: results[i].score)
    assert top == 0
    a = decide(
        assessor.pinned("declaration"),
        "declaration",
        record_id="R",
        ref="D/1",
        results=results,
        top=top,
        factors=[],
        assessed_at=datetime.now(UTC),
        assessment_id="A",
        path="api",
    )
    assert a.model_score == 32.71
    (line,) = [r for r in a.reasons if " Model " in r or r.startswith("Model ")]
    assert line.startswith("Item 4: Model ") and " gives 33 out of 100" in line, line


def test_batch_and_real_time_name_the_same_model_item(kcs, assessor) -> None:
    """Declarations of two different goods items: in both paths the model line's item and number
    are those of the item with the highest model score, which is the record's ``model_score``."""
    recs = features.lake_records(kcs, "declaration")
    rows = recs.slice(0, 120).to_pylist()
    pairs, lake_rows = [], []
    for i in range(0, len(rows), 2):
        first = {**rows[i], "item_number": 1}
        second = {**rows[i + 1], "item_number": 2, "record_id": rows[i]["record_id"] + "-2",
                  "declaration_record_id": rows[i]["declaration_record_id"],
                  "declaration_id": rows[i]["declaration_id"], "version": rows[i]["version"]}  # fmt: skip
        pairs.append((first, second))
        lake_rows += [first, second]
    table = pa.Table.from_pylist(lake_rows, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    checked = 0
    for first, second in pairs:
        header = {**first, "record_id": first["declaration_record_id"], "items": [first, second]}
        (single,) = assessor.assess("declaration", [header])
        other = batch[single.record_id]
        assert single.reasons == other["reasons"] and single.model_score == other["model_score"]
        by_item = {}
        for item in (first, second):
            (alone,) = assessor.assess("declaration", [{**header, "items": [item]}])
            by_item[item["item_number"]] = alone.model_score
        (line,) = [r for r in single.reasons if re.match(r"Item \d+: Model ", r)]
        named = int(line.split(":")[0].removeprefix("Item "))
        assert by_item[named] == max(by_item.values()) == single.model_score, (line, by_item)
        assert f" gives {single.model_score:.0f} out of 100" in line
        checked += 1
    assert checked == 60
