"""From a features table to the numeric matrix LightGBM reads.

Numeric and bool columns go in as numbers (NULL -> NaN). Text columns become category codes from a
vocabulary fixed at training time and stored with the model, so a code never seen in training
scores like a missing value instead of failing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.risk.errors import ModelError
from sciti.risk.features.catalog import _kind_config

MAX_CATEGORIES = 250  # most frequent values kept per text column; the rest read as "other" (NaN)


def model_columns(kind: str, label: str = "fraud") -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns a ``label`` model of ``kind`` reads, from features.yaml."""
    spec = _kind_config(kind).get("model")
    if not spec:
        raise ModelError(
            f"no model features are defined for {kind!r}",
            remedy="add a `model:` section for this kind to risk/features/data/features.yaml",
        )
    own = spec.get(label) or {}
    return list(own.get("numeric", spec["numeric"])), list(own.get("categorical", spec["categorical"]))


def fit_categories(table: pa.Table, categorical: list[str]) -> dict[str, list[str]]:
    """The vocabulary of each text column: its most frequent values."""
    out: dict[str, list[str]] = {}
    for col in categorical:
        if col not in table.column_names:
            out[col] = []
            continue
        counts = pc.value_counts(pc.cast(table[col], pa.string())).to_pylist()
        ranked = sorted(
            ((c["values"], c["counts"]) for c in counts if c["values"] not in (None, "")),
            key=lambda vc: (-vc[1], vc[0]),
        )
        out[col] = [v for v, _ in ranked[:MAX_CATEGORIES]]
    return out


def to_matrix(table: pa.Table, numeric: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Rows x (numeric + categorical) float matrix; absent columns are all-missing."""
    n = table.num_rows
    cols: list[np.ndarray] = []
    for col in numeric:
        if col not in table.column_names:
            cols.append(np.full(n, np.nan))
            continue
        arr = table[col]
        if pa.types.is_boolean(arr.type):
            arr = pc.cast(arr, pa.int8())
        cols.append(np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64))
    for col, vocab in categories.items():
        if col not in table.column_names or not vocab:
            cols.append(np.full(n, np.nan))
            continue
        idx = pc.index_in(pc.cast(table[col], pa.string()), value_set=pa.array(vocab, pa.string()))
        cols.append(np.asarray(pc.cast(idx, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64))
    return np.column_stack(cols) if cols else np.empty((n, 0))


def row_matrix(row: dict[str, Any], numeric: list[str], vocab: dict[str, dict[str, int]]) -> np.ndarray:
    """The same for one record (real-time path), without building an Arrow table.

    ``vocab``: per text column, value -> code (the model's categories as a dict).
    """
    values: list[float] = []
    for col in numeric:
        v = row.get(col)
        values.append(np.nan if v is None else float(v))
    for col, codes in vocab.items():
        v = row.get(col)
        code = codes.get(str(v)) if v is not None else None
        values.append(np.nan if code is None else float(code))
    return np.asarray([values], dtype=np.float64)
