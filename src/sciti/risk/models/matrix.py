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


_BLOCK_ROWS = 8192  # rows filled at a time: one block of the matrix stays in cache while columns land


def to_matrix(table: pa.Table, numeric: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Rows x (numeric + categorical) float matrix (C order, as LightGBM reads it); absent columns are NaN.

    The table is read one record batch at a time (its columns' chunks side by side): each column
    of the batch becomes a float64 vector straight from its Arrow buffers (no Python per row):
    numbers as they are (NULL -> NaN), text through one ``index_in`` (or, for a dictionary-encoded
    chunk, one lookup of its dictionary). The vectors are copied into the matrix a block of rows
    at a time: writing a whole column at once would stride across the entire matrix once per
    column. No whole-column vector is ever made, so no column is copied twice.
    """
    n = table.num_rows
    names = set(table.column_names)
    readers: list[tuple[int, str, pa.Array | None]] = [
        (j, col, None) for j, col in enumerate(numeric) if col in names
    ]
    readers += [
        (len(numeric) + k, col, pa.array(vocab, pa.string()))
        for k, (col, vocab) in enumerate(categories.items())
        if col in names and vocab
    ]
    out = np.empty((n, len(numeric) + len(categories)), dtype=np.float64)
    present = {j for j, _, _ in readers}
    for j in range(out.shape[1]):
        if j not in present:
            out[:, j] = np.nan
    if not readers:
        return out
    at = 0
    for batch in table.select(list(dict.fromkeys(col for _, col, _ in readers))).to_batches():
        k = batch.num_rows
        vectors = [
            (
                j,
                _array_floats(batch.column(col))
                if value_set is None
                else _chunk_codes(batch.column(col), value_set),
            )
            for j, col, value_set in readers
        ]
        for start in range(0, k, _BLOCK_ROWS):
            stop = min(k, start + _BLOCK_ROWS)
            block = out[at + start : at + stop]
            for j, vec in vectors:
                block[:, j] = vec[start:stop]
        at += k
    return out


def _array_floats(arr: pa.Array) -> np.ndarray:
    """One column's values as float64, NULL (and anything NaN) as NaN; booleans as 0/1."""
    t = arr.type
    if pa.types.is_boolean(t):
        arr = pc.cast(arr, pa.int8())
    elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        arr = pc.cast(arr, pa.float64())  # decimals, text holding numbers: Arrow's own cast, as before
    return _chunk_floats(arr)


def _chunk_floats(chunk: pa.Array) -> np.ndarray:
    if pa.types.is_null(chunk.type):
        return np.full(len(chunk), np.nan)
    if chunk.null_count == 0 and pa.types.is_float64(chunk.type):
        return chunk.to_numpy(zero_copy_only=True)  # a view of the Arrow buffer: no copy
    # Integers and floats with NULLs: Arrow writes NaN for NULL while it converts (one pass).
    return np.asarray(chunk.to_numpy(zero_copy_only=False), dtype=np.float64)


def _chunk_codes(chunk: pa.Array, value_set: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(chunk.type):
        # One lookup per distinct value, then a gather by the chunk's indices.
        words = _chunk_codes(chunk.dictionary, value_set)
        idx = chunk.indices
        if idx.null_count == 0:
            return words[idx.to_numpy(zero_copy_only=True)]
        safe = np.asarray(pc.fill_null(idx, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        codes = words[safe] if len(words) else np.full(len(chunk), np.nan)
        codes[np.asarray(pc.is_null(idx).to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
        return codes
    if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
        chunk = pc.cast(chunk, pa.string())
    idx = pc.index_in(chunk, value_set=value_set.cast(chunk.type))
    return np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.float64)  # NULL (not found) -> NaN


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
