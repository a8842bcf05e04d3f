"""Record-style mapping: Parsed units (XML messages, EDIFACT messages, JSON lines) -> Arrow rows.

Each unit is validated record by record with the model's validator; any problem rejects the whole
unit (one quarantine entry listing every problem), because storing half a declaration would be
worse than storing none. Children are linked to the first record of their parent kind in the unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from sciti.acquire.items import Parsed, Rejected
from sciti.acquire.mapping import Mapped
from sciti.acquire.validation import Problem, check_record, describe
from sciti.model import PARENT_COLUMN, ModelError, get_kind, make_record_id


def _unit_rows(
    item: Parsed, source: str, provenance: dict[str, Any], lists: Any
) -> tuple[dict[str, list[dict[str, Any]]], list[Problem]]:
    problems: list[Problem] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    first_id: dict[str, str] = {}
    # Parents first, so a child can find its parent's record id whatever order the reader used.
    order = sorted(item.records, key=lambda k: 1 if _parent(k) else 0)
    for kind_name in order:
        try:
            kind = get_kind(kind_name)
        except ModelError as exc:
            problems.append((None, str(exc)))
            continue
        for values in item.records[kind_name]:
            clean, probs = check_record(kind, values, lists)
            problems += [((f"{kind.name}.{f}" if f else None), r) for f, r in probs]
            if probs:
                continue
            rid = make_record_id(kind.name, source, *(clean.get(k) for k in kind.key))
            first_id.setdefault(kind.name, rid)
            row = {"record_id": rid, **provenance, "locator": item.locator, **clean}
            if kind.parent:
                row[PARENT_COLUMN[0]] = first_id.get(kind.parent)
            rows.setdefault(kind.name, []).append(row)
    return rows, problems


def _parent(kind_name: str) -> str | None:
    try:
        return get_kind(kind_name).parent
    except ModelError:
        return None


def _to_table(kind_name: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=get_kind(kind_name).arrow_schema())


def map_records(
    items: Iterable[Parsed | Rejected], *, source: str, batch_id: str, ingested_at: datetime, lists: Any
) -> Mapped:
    """Validate and link every unit; return rows per kind and one Rejected per bad unit."""
    mapped = Mapped()
    buffers: dict[str, list[dict[str, Any]]] = {}
    provenance = {"source": source, "batch_id": batch_id, "ingested_at": ingested_at}
    for item in items:
        mapped.received += 1
        if isinstance(item, Rejected):
            mapped.rejects.append(item)
            continue
        rows, problems = _unit_rows(item, source, provenance, lists)
        if not problems:
            try:  # a value the Arrow type cannot hold is the unit's problem, not the batch's
                for kind_name, kind_rows in rows.items():
                    _to_table(kind_name, kind_rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                problems = [(None, f"a value does not fit its field type: {exc}")]
        if problems:
            mapped.rejects.append(
                Rejected(
                    locator=item.locator,
                    reason=describe(problems),
                    field=problems[0][0],
                    raw=item.raw,
                    details={"problems": [{"field": f, "reason": r} for f, r in problems]},
                )
            )
            continue
        mapped.stored += 1
        for kind_name, kind_rows in rows.items():
            buffers.setdefault(kind_name, []).extend(kind_rows)
    mapped.tables = {k: _to_table(k, rows) for k, rows in buffers.items()}
    return mapped
