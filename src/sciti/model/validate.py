"""Validation of canonical records: one record at a time, or a whole Arrow table at once.

Both entry points give the same outcome for the same values (tests/model/test_parity.py):

- each field is coerced to its type (see ``sciti.model.rules`` for the accepted forms), trimmed,
  and an empty value becomes null;
- mandatory fields must have a value; coded fields must be in their code list; identifiers must
  pass their check digit; text may not exceed ``max_length``;
- a key that is not a field of the kind, holding a value, is a problem (storing the rest would
  silently lose that value); provenance columns are ignored.

Each field yields at most one problem. Problems are ordered as the kind's fields, then unknown
keys in the order given.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model.codelists import CodeLists
from sciti.model.columns import clean_text, validate_column
from sciti.model.rules import Problem, check_value, is_empty, quoted
from sciti.model.schema import PARENT_COLUMN, PROVENANCE_NAMES, RecordKind

__all__ = ["Problem", "TableValidation", "validate_record", "validate_table"]

_IGNORED = frozenset(PROVENANCE_NAMES) | {PARENT_COLUMN[0]}


def _unknown_reason(kind: RecordKind, key: str) -> str:
    return f"{quoted(key)} is not a field of record kind '{kind.name}'"


def validate_record(
    kind: RecordKind, values: dict[str, Any], codelists: CodeLists
) -> tuple[dict, list[Problem]]:
    """Typed values of one record (every field of the kind, None where empty) and its problems."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for fd in kind.fields:
        raw = values.get(fd.name)
        typed, reason = check_value(fd, raw, codelists)
        out[fd.name] = typed
        if reason is not None:
            problems.append(Problem(fd.name, reason, raw))
    for key, raw in values.items():
        if key not in kind._by_name and key not in _IGNORED and not is_empty(raw):
            problems.append(Problem(key, _unknown_reason(kind, key), raw))
    return out, problems


@dataclass
class TableValidation:
    """Outcome of ``validate_table``.

    ``valid`` holds the rows that passed, with only the kind's field columns typed as the kind's
    Arrow schema; ``valid_index`` gives each of those rows' index in the input table, so the
    caller can attach provenance; ``rejected`` lists (input row index, problems) for the others.
    """

    valid: pa.Table
    valid_index: pa.Int64Array
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.valid.num_rows + len(self.rejected)


def field_schema(kind: RecordKind) -> pa.Schema:
    """The kind's field columns only, typed as in ``kind.arrow_schema()``."""
    full = kind.arrow_schema()
    return pa.schema([full.field(name) for name in kind.field_names])


def validate_table(kind: RecordKind, table: pa.Table, codelists: CodeLists) -> TableValidation:
    """Validate every row of ``table`` against ``kind`` with vectorised kernels; see the module doc."""
    n = table.num_rows
    schema = field_schema(kind)
    columns: list[pa.Array] = []
    found: dict[int, list[tuple[int, str, int]]] = defaultdict(list)  # row -> (order, reason, column)
    names = table.column_names
    for order, fd in enumerate(kind.fields):
        column = table.column(fd.name) if fd.name in names else pa.chunked_array([pa.nulls(n, pa.string())])
        result = validate_column(fd, column, codelists)
        columns.append(result.values)
        for row, reason in zip(result.bad_rows, result.reasons, strict=True):
            found[row].append((order, reason, names.index(fd.name) if fd.name in names else -1))
    for offset, name in enumerate(names):
        if name in kind._by_name or name in _IGNORED:
            continue
        column = table.column(name)
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        text = clean_text(column if pa.types.is_string(column.type) else pc.cast(column, pa.string()))
        reason = _unknown_reason(kind, name)
        for row in np.flatnonzero(pc.is_valid(text).to_numpy(zero_copy_only=False)).tolist():
            found[row].append((len(kind.fields) + offset, reason, offset))
    valid = pa.Table.from_arrays(columns, schema=schema) if columns else pa.table({})
    if not found:
        return TableValidation(valid, pa.array(np.arange(n, dtype=np.int64)))
    bad = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
    keep = np.ones(n, dtype=bool)
    keep[bad] = False
    valid_index = pa.array(np.flatnonzero(keep).astype(np.int64))
    rejected = []
    for row in sorted(found):
        entries = sorted(found[row], key=lambda e: e[0])
        problems = []
        for order, reason, col in entries:
            name = kind.fields[order].name if order < len(kind.fields) else names[col]
            value = table.column(col)[row].as_py() if col >= 0 else None
            problems.append(Problem(name, reason, value))
        rejected.append((row, problems))
    return TableValidation(valid.take(valid_index), valid_index, rejected)
