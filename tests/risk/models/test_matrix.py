"""The batch feature matrix equals the real-time one record by record, whatever the Arrow layout."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from sciti.risk.models.matrix import row_matrix, to_matrix

NUMERIC = ["mass", "count", "flag", "price", "empty", "absent"]
CATEGORIES = {"office": ["40", "20", "B"], "origin": ["CN", "VN"], "chapter": ["84"], "absent_text": ["x"]}
VOCAB = {c: {v: i for i, v in enumerate(vs)} for c, vs in CATEGORIES.items()}


def records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def maybe(value):
        return None if rng.random() < 0.15 else value

    return [
        {
            "mass": maybe(rng.choice([rng.uniform(0, 5e4), float("nan"), 0.0, -1.5])),
            "count": maybe(rng.randint(-3, 10**6)),
            "flag": maybe(rng.random() < 0.5),
            "price": maybe(Decimal(rng.randint(0, 10**8)) / Decimal(10000)),
            "empty": None,
            "office": maybe(rng.choice(["40", "20", "B", "99", ""])),
            "origin": maybe(rng.choice(["CN", "VN", "KR", "cn"])),
            "chapter": maybe(rng.choice(["84", "85"])),
        }
        for _ in range(n)
    ]


SCHEMA = pa.schema(
    [
        ("mass", pa.float64()),
        ("count", pa.int64()),
        ("flag", pa.bool_()),
        ("price", pa.decimal128(18, 4)),
        ("empty", pa.null()),
        ("office", pa.string()),
        ("origin", pa.string()),
        ("chapter", pa.string()),
    ]
)


def layouts(rows: list[dict]) -> dict[str, pa.Table]:
    whole = pa.Table.from_pylist(rows, schema=SCHEMA)
    thirds = [rows[: len(rows) // 3], rows[len(rows) // 3 : len(rows) // 2], rows[len(rows) // 2 :]]
    chunked = pa.concat_tables([pa.Table.from_pylist(r, schema=SCHEMA) for r in thirds])
    encoded = chunked
    for name in ("office", "origin"):  # dictionary-encoded text, as Parquet readers may give it
        i = encoded.schema.get_field_index(name)
        encoded = encoded.set_column(
            i, name, pa.chunked_array([c.dictionary_encode() for c in encoded[name].chunks])
        )
    large = whole.set_column(5, "office", whole["office"].cast(pa.large_string()))
    no_nulls = pa.table({"mass": pa.array([1.0, 2.5, float("nan")]), "office": pa.array(["B", "40", "7"])})
    return {
        "one chunk": whole,
        "chunks": chunked,
        "dictionary": encoded,
        "large string": large,
        "no nulls": no_nulls,
    }


@pytest.mark.parametrize("layout", ["one chunk", "chunks", "dictionary", "large string", "no nulls"])
def test_batch_matrix_equals_row_by_row(layout: str) -> None:
    table = layouts(records(1200, seed=5))[layout]
    x = to_matrix(table, NUMERIC, CATEGORIES)
    assert x.shape == (table.num_rows, len(NUMERIC) + len(CATEGORIES)) and x.flags["C_CONTIGUOUS"]
    for i, row in enumerate(table.to_pylist()):
        row = {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
        want = row_matrix(row, NUMERIC, VOCAB)[0]
        exact = [j for j, name in enumerate(NUMERIC) if name != "price"] + list(
            range(len(NUMERIC), len(want))
        )
        assert np.array_equal(x[i, exact], want[exact], equal_nan=True), (i, row)
        # Decimals: Arrow's cast and Python's float() may differ in the last bit (as before this change).
        np.testing.assert_allclose(x[i, 3], want[3], rtol=1e-15)


def test_absent_and_empty_vocabulary_columns_are_missing() -> None:
    table = pa.table({"office": pa.array(["40", None])})
    x = to_matrix(table, ["absent"], {"office": [], "other": ["a"]})
    assert x.shape == (2, 3) and np.isnan(x).all()
    assert to_matrix(table.slice(0, 0), NUMERIC, CATEGORIES).shape == (0, len(NUMERIC) + len(CATEGORIES))
