"""The batch path writes most records' words as Arrow columns and a few (those with factors) in
Python: both give the same reasons, rule ids and unknown codes for the same record."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sciti.risk import features
from sciti.risk.engine import columns
from sciti.risk.engine.arrowrules import TableRules

SAME = (
    "record_id", "subject_ref", "office_code", "score", "rule_score", "model_score", "risk_lane", "lane",
    "sampled", "rule_ids", "model_version", "unknown_codes", "rules_version", "reference_snapshot",
)  # fmt: skip


def _with_unknown_codes(feats: pa.Table) -> pa.Table:
    codes = feats["unknown_codes"].to_pylist()
    for i in range(0, len(codes), 9):
        codes[i] = "hs_code,country_of_origin,hs_code" if i % 2 else "office_code"
    at = feats.schema.get_field_index("unknown_codes")
    return feats.set_column(at, "unknown_codes", pa.array(codes, feats.schema.field(at).type))


def _compare(plain: list[dict], explained: list[dict]) -> None:
    assert len(plain) == len(explained)
    for a, b in zip(plain, explained, strict=True):
        for name in SAME:
            assert a[name] == b[name], (name, a["record_id"], a[name], b[name])
        factor_lines = {f["text"] for f in json.loads(b["factors"])}  # decide names the item in front
        without = [
            r for r in b["reasons"] if r not in factor_lines and r.split(": ", 1)[-1] not in factor_lines
        ]
        assert a["reasons"] == without, a["record_id"]
        # The codes line for line: the same, but for the factors' lines.
        codes = [c for c in b["reason_codes"] if json.loads(c)["code"] != "factor"]
        assert a["reason_codes"] == codes and len(codes) == len(without), a["record_id"]
        assert a["factors"] == "[]"


@pytest.mark.parametrize("several_items", [False, True])
def test_words_as_columns_equal_words_in_python(kcs, assessor, several_items: bool) -> None:
    assessor.policy = dataclasses.replace(assessor.policy, sample_share=0.3, sample_seed="words")
    recs = features.lake_records(kcs, "declaration").slice(0, 500)
    if several_items:  # every third declaration gets a second item
        rows = recs.to_pylist()
        extra = [{**r, "record_id": r["record_id"] + "-2", "item_number": 2} for r in rows[::3]]
        recs = pa.Table.from_pylist(rows + extra, schema=recs.schema)
    feats = _with_unknown_codes(features.compute_batch("declaration", recs, assessor.reference))
    plain = assessor.assess_batch("declaration", feats, explain="none", with_features=True).to_pylist()
    explained = assessor.assess_batch("declaration", feats, explain="all", with_features=True).to_pylist()
    key = [(r["record_id"], r["score"]) for r in explained]
    assert [(r["record_id"], r["score"]) for r in plain] == key
    _compare(plain, explained)
    assert any(r["unknown_codes"] for r in plain) and any(r["rule_ids"] for r in plain)
    assert any(r["sampled"] for r in plain) and not all(r["sampled"] for r in plain)
    # Flagged: both kinds in one batch.
    flagged = assessor.assess_batch("declaration", feats, explain="flagged", with_features=True).to_pylist()
    for f, p, e in zip(flagged, plain, explained, strict=True):
        assert f["reasons"] == (e["reasons"] if f["factors"] != "[]" else p["reasons"])
        assert f["reason_codes"] == (e["reason_codes"] if f["factors"] != "[]" else p["reason_codes"])
        assert f["rule_ids"] == p["rule_ids"] and f["unknown_codes"] == p["unknown_codes"]


def test_sparse_list_array_puts_items_in_order() -> None:
    base = pa.array(["m0", "m1", "m2", "m3", "m4"])
    col = columns.Sparse(5, lambda u: [base[u].as_py()], base)
    col.add(np.array([3, 1]), pa.array(["r1-3", "r1-1"]))
    col.add(np.array([1, 1, 4]), pa.array(["u1-a", "u1-b", "u4"]))
    col.add(np.array([0, 3]), pa.array(["s0", "s3"]), after=True)
    col[2].append("own")
    col[4] = ["only"]  # a unit's own value is the whole of it
    assert col.list_array().to_pylist() == [
        ["m0", "s0"],
        ["r1-1", "u1-a", "u1-b", "m1"],
        ["m2", "own"],
        ["r1-3", "m3", "s3"],
        ["only"],
    ]
    bare = columns.Sparse(3, lambda u: [])
    bare.add(np.array([2, 0, 2]), pa.array(["a", "b", "c"]))
    assert bare.list_array().to_pylist() == [["b"], [], ["a", "c"]]
    coded = columns.Sparse(3, lambda u: [], pa.DictionaryArray.from_arrays(pa.array([1, 0, 1]), ["x", "y"]))
    assert coded.list_array().to_pylist() == [["y"], ["x"], ["y"]]


@pytest.mark.parametrize(
    "ids",
    [
        [],
        ["a"],
        ["a", "b", "a"],
        ["a", "a\x00"],
        ["", ""],
        ["", "x"],
        ["abcdefgh", "abcdefgh"],
        ["abcdefghi", "abcdefghj"],
        ["x" * 70, "x" * 70],
        ["x" * 70, "y" * 70],
        ["a", None],
        ["é", "e"],
        [f"{i:x}-{i % 7}" for i in range(3000)],
        [f"{i:x}-{i % 7}" for i in range(3000)] + ["5-5"],
    ],
)
def test_all_distinct_is_arrow_count(ids: list) -> None:
    arr = pa.array(ids, pa.string())
    want = pc.count_distinct(arr).as_py() == len(ids)
    assert columns.all_distinct(arr) is want
    if len(ids) > 1:
        assert columns.all_distinct(pa.chunked_array([arr.slice(0, 1), arr.slice(1)])) is want
        assert columns.all_distinct(arr.slice(1)) is (pc.count_distinct(arr.slice(1)).as_py() == len(ids) - 1)


def test_text_hashes_equal_for_equal_texts() -> None:
    rng = np.random.default_rng(4)
    texts = ["".join(rng.choice(list("ab"), size=int(k))) for k in rng.integers(0, 20, 4000)]
    hashed = columns.text_hashes(pa.array(texts)[1:])
    assert hashed is not None
    seen: dict[str, int] = {}
    for text, h in zip(texts[1:], hashed.tolist(), strict=True):
        assert seen.setdefault(text, h) == h
    assert len(set(seen.values())) == len(seen)


@pytest.mark.parametrize("offset", [0, 1, 3, 8, 13])
def test_mask_reads_true_bits(offset: int) -> None:
    rng = np.random.default_rng(offset)
    values = [None if rng.random() < 0.2 else bool(rng.random() < 0.5) for _ in range(1001)]
    arr = pa.array(values, pa.bool_()).slice(offset, 1001 - 2 * offset)
    rules = TableRules(pa.table({"x": pa.nulls(len(arr))}))
    want = np.array([v is True for v in arr.to_pylist()])
    assert (rules._mask(arr) == want).all()
    assert (rules._mask(pa.chunked_array([arr[:100], arr[100:]])) == want).all()


def test_matrix_of_chunked_table_equals_row_by_row() -> None:
    from decimal import Decimal

    from sciti.risk.models.matrix import row_matrix, to_matrix

    table = pa.table(
        {
            "a": pa.chunked_array([[1], [None, 3, 4, 5]]),  # chunks that do not line up
            "b": pa.chunked_array([[1.5, float("nan"), None], [2.0, -1.0]]),
            "c": pa.chunked_array([[True, None], [False, True, None]], pa.bool_()),
            "d": pa.chunked_array(
                [[Decimal("1.25"), None, Decimal("3")], [None, Decimal("-2")]], pa.decimal128(6, 2)
            ),
            "s": pa.chunked_array(
                [
                    pa.array(["x", None, "y"]).dictionary_encode(),
                    pa.array(["z", "x", None]).dictionary_encode().slice(0, 2),
                ]
            ),
            "t": pa.chunked_array([["x", "q"], ["y", None, "x"]]),
        }
    )
    numeric = ["a", "b", "c", "d", "absent"]
    categories = {"s": ["y", "x"], "t": ["x", "y"], "gone": ["x"], "empty": []}
    got = to_matrix(table, numeric, categories)
    vocab = {col: {v: i for i, v in enumerate(words)} for col, words in categories.items()}
    for i, row in enumerate(table.to_pylist()):
        want = row_matrix(row, numeric, vocab)[0]
        assert np.array_equal(got[i], want, equal_nan=True), (i, got[i], want)
    assert got.flags.c_contiguous and got.shape == (5, 9)
