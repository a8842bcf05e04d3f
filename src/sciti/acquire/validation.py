"""The model's validators, adapted to what the runner needs.

``sciti.model`` owns validation (types, mandatory fields, code lists, check digits); this module
turns its results into (field, reason) pairs per rejected row or unit and loads the code lists
once per process.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model import RecordKind
from sciti.model.codelists import CodeLists, load_codelists
from sciti.model.validate import validate_record, validate_table

Problem = tuple[str | None, str]


def _problem(p: Any) -> Problem:
    return (getattr(p, "field", None), str(getattr(p, "reason", p)))


@lru_cache(maxsize=4)
def codelists(folder: str) -> CodeLists:
    """The model's code lists, loaded once per folder."""
    return load_codelists(Path(folder))


def check_table(kind: RecordKind, table: pa.Table, lists: CodeLists) -> dict[int, list[Problem]]:
    """Rejected rows of ``table`` (kind field columns) -> their problems."""
    result = validate_table(kind, table, lists)
    return {int(i): [_problem(p) for p in probs] for i, probs in result.rejected}


def decide_table(
    kind: RecordKind, table: pa.Table, lists: CodeLists
) -> tuple[dict[int, list[Problem]], pa.Table]:
    """Rejected rows of ``table`` with their problems, and the model's typed values of every field
    column, full length (null at rejected rows), so callers can pick the accepted rows by position."""
    result = validate_table(kind, table, lists)
    rejected = {int(i): [_problem(p) for p in probs] for i, probs in result.rejected}
    if not rejected:
        return rejected, result.valid
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[result.valid_index.to_numpy(zero_copy_only=False)] = True
    keep = pa.array(mask)
    columns = {
        name: pc.replace_with_mask(
            pa.nulls(table.num_rows, result.valid.schema.field(name).type),
            keep,
            result.valid.column(name).combine_chunks(),
        )
        for name in result.valid.column_names
    }
    return rejected, pa.table(columns)


def check_record(
    kind: RecordKind, values: dict[str, Any], lists: CodeLists
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate one record: (typed values, problems)."""
    clean, problems = validate_record(kind, values, lists)
    return clean, [_problem(p) for p in problems]


def describe(problems: list[Problem]) -> str:
    """One line a person understands: every problem with its field."""
    return "; ".join(
        f"{field}: {reason}" if field and not reason.startswith(field) else reason
        for field, reason in problems
    )
