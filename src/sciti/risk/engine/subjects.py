"""Subjects: what one assessment is about, per record kind, and the rows that are scored for it.

A declaration is scored per goods item (header fields + the item's fields, the item winning where
both name a field) and rolled up: one assessment per declaration, its score the highest item's.
Every other kind is one row, one assessment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sciti.model import FieldDef, get_kind, make_record_id
from sciti.risk.features.catalog import parent_fields

REALTIME_SOURCE = "realtime"  # source name in record ids computed for records sent over the API


@dataclass(frozen=True)
class SubjectSpec:
    kind: str
    ref_fields: tuple[str, ...]  # what a person calls the record (declaration id + version ...)
    # Where the record is handled: the customs office or control point (the administration's own
    # code, as an account's office is) that works it and whose red-lane capacity it uses. The first
    # field that holds a value wins; () for a kind whose record names no such place. A field of the
    # scored row: the record's own or its parent's (``field_def``). Never a port or airport
    # (UN/LOCODE, IATA): an officer's office is not one (decision 0103).
    office_fields: tuple[str, ...]

    @property
    def office_field(self) -> str | None:
        """The first office field (None: the kind has none)."""
        return self.office_fields[0] if self.office_fields else None


SUBJECTS: dict[str, SubjectSpec] = {
    "declaration": SubjectSpec("declaration", ("declaration_id", "version"), ("office_code",)),
    # A consignment is lodged with its manifest's office (manifest.customs_office), which its scored
    # row takes from the manifest (features.yaml from_parent; decision 0108). Its discharge location
    # is a port (UN/LOCODE), not an office.
    "consignment": SubjectSpec("consignment", ("manifest_id", "transport_document"), ("customs_office",)),
    # Inbound trucks name the control point they enter by, outbound ones the one they leave by.
    "road_cargo_info": SubjectSpec(
        "road_cargo_info", ("reference", "version"), ("entry_control_point", "exit_control_point")
    ),
    # The control point where the passenger crosses (e.g. HKIA), not the flight's airport.
    "passenger": SubjectSpec("passenger", ("voyage_id", "record_ref"), ("control_point",)),
    "currency_declaration": SubjectSpec("currency_declaration", ("declaration_number",), ("control_point",)),
}


def field_def(kind: str, name: str) -> FieldDef:
    """A field of ``kind``'s scored row: the kind's own, or one the row takes from its parent record
    (``features.parent_fields``: a consignment's manifest's ``customs_office``)."""
    own = get_kind(kind)
    if name in own.field_names:
        return own.field(name)
    for f in parent_fields(kind):
        if f.name == name:
            return f
    raise KeyError(f"{kind} rows have no field {name!r}")


def office_of(kind: str, row: dict[str, Any]) -> str | None:
    """The office where one record (or scored row) of ``kind`` is handled, or None."""
    for name in spec(kind).office_fields:
        value = row.get(name)
        if value is not None and str(value) != "":
            return str(value)
    return None


def office_column(kind: str, table: pa.Table) -> pa.Array | pa.ChunkedArray:
    """``office_of`` for every row of ``table`` (an Arrow string column, null where none)."""
    present = [name for name in spec(kind).office_fields if name in table.column_names]
    cols = [pc.cast(table[name], pa.string()) for name in present]
    cols = [pc.if_else(pc.equal(c, ""), pa.scalar(None, pa.string()), c) for c in cols]
    if not cols:
        return pa.nulls(table.num_rows, pa.string())
    return cols[0] if len(cols) == 1 else pc.coalesce(*cols)


def spec(kind: str) -> SubjectSpec:
    from sciti.risk.engine.errors import AssessmentInputError

    try:
        return SUBJECTS[kind]
    except KeyError:
        raise AssessmentInputError(
            f"record kind {kind!r} is not assessed", remedy=f"use one of: {', '.join(SUBJECTS)}"
        ) from None


def subject_ref(kind: str, record: dict[str, Any]) -> str:
    parts = [record.get(f) for f in spec(kind).ref_fields]
    return "/".join("" if p is None else str(p) for p in parts)


def record_id_of(kind: str, record: dict[str, Any]) -> str:
    """The lake record id given with the record, else the one SCITI would give it (same formula)."""
    given = record.get("record_id")
    if given:
        return str(given)
    source = record.get("source") or REALTIME_SOURCE
    return make_record_id(kind, source, *(record.get(k) for k in get_kind(kind).key))


def item_rows(header: dict[str, Any]) -> list[dict[str, Any]]:
    """The scored rows of one declaration sent as a header with ``items``."""
    base = {k: v for k, v in header.items() if k != "items"}
    base["record_id"] = None
    decl_id = record_id_of("declaration", header)
    source = header.get("source") or REALTIME_SOURCE
    rows = []
    for item in header.get("items") or []:
        row = {**base, **item}
        row["declaration_id"] = header.get("declaration_id")
        row["declaration_version"] = header.get("version")
        row["parent_record_id"] = row["declaration_record_id"] = decl_id
        row["record_id"] = item.get("record_id") or make_record_id(
            "declaration_item",
            source,
            header.get("declaration_id"),
            header.get("version"),
            item.get("item_number"),
        )
        rows.append(row)
    return rows


def rows_of(kind: str, record: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(the assessment's record id, the rows to score) for one record as sent."""
    if kind == "declaration":
        return record_id_of(kind, record), item_rows(record)
    rid = record_id_of(kind, record)
    return rid, [{**record, "record_id": rid}]


__all__ = [
    "REALTIME_SOURCE",
    "SUBJECTS",
    "SubjectSpec",
    "field_def",
    "item_rows",
    "office_column",
    "office_of",
    "record_id_of",
    "rows_of",
    "spec",
    "subject_ref",
]
