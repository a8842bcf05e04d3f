"""Record kinds as data: each canonical kind is a YAML file in ``kinds/``, loaded and checked here.

A kind lists its fields with type, meaning, WCO Data Model reference, code list, identifier scheme
and data classification. Everything else (Arrow/Iceberg schemas, validation, the data dictionary,
API models) is derived from these files, so adding a field is a one-line change to YAML.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import pyarrow as pa
import yaml

from sciti.model.codelists import CODELIST_NAMES
from sciti.model.errors import ModelError
from sciti.model.identifiers import IDENTIFIER_NAMES

# Types a field may have, and the Arrow type each is stored as.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.decimal128(18, 4),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

NUMBER_TYPES = frozenset({"int", "float", "decimal"})

# Classification labels a field may carry; access control reads them (masking, need-to-know).
CLASSIFICATIONS = {"public", "internal", "personal", "restricted", "partner_shareable"}

# Provenance columns every stored row carries, in this order, ahead of the kind's own fields.
PROVENANCE: tuple[tuple[str, pa.DataType, str], ...] = (
    ("record_id", pa.string(), "Deterministic id of the record: md5 of kind, source and business key."),
    ("source", pa.string(), "Source system (connector name) the record came from."),
    ("batch_id", pa.string(), "Acquisition batch that stored the record."),
    ("locator", pa.string(), "Where in the source: file + line, XML path, EDIFACT segment, message id."),
    ("ingested_at", pa.timestamp("us", tz="UTC"), "When SCITI stored the record (UTC)."),
)
PARENT_COLUMN = ("parent_record_id", pa.string(), "record_id of the record this one belongs to.")
PROVENANCE_NAMES = tuple(name for name, _, _ in PROVENANCE)

# Separator for the parts hashed into a record id: a control character no source value contains.
ID_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    description: str
    required: bool = False
    wco: str | None = None
    codelist: str | None = None
    identifier: str | None = None
    classification: str = "internal"
    max_length: int | None = None
    minimum: float | None = None  # numbers: the smallest and largest allowed, both included
    maximum: float | None = None
    example: str | None = None
    values: tuple[str, ...] | None = None  # closed list of allowed spellings (matched regardless of case)

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]

    @property
    def personal(self) -> bool:
        return self.classification == "personal"


@dataclass(frozen=True)
class RecordKind:
    name: str
    table: str
    description: str
    key: tuple[str, ...]
    fields: tuple[FieldDef, ...]
    parent: str | None = None
    wco: str | None = None
    group: str = "declarations"
    _by_name: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> FieldDef:
        try:
            return self._by_name[name]
        except KeyError:
            raise ModelError(
                f"record kind {self.name!r} has no field {name!r}",
                remedy=f"use one of: {', '.join(self._by_name)}",
            ) from None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def ident(self) -> str:
        """Lake table identifier, e.g. ``std.declarations``."""
        return f"std.{self.table}"

    def arrow_schema(self) -> pa.Schema:
        """Schema of the ``std`` table: provenance columns, parent link for child kinds, then fields."""
        cols = [
            pa.field(n, t, nullable=(n not in ("record_id", "source", "batch_id"))) for n, t, _ in PROVENANCE
        ]
        if self.parent:
            cols.append(pa.field(PARENT_COLUMN[0], PARENT_COLUMN[1]))
        cols += [pa.field(f.name, f.arrow_type) for f in self.fields]
        return pa.schema(cols)


def make_record_id(kind: str, source: str, *parts: Any) -> str:
    """Deterministic record id. The same formula in SQL: ``md5(concat_ws(chr(31), kind, source, ...))``."""
    text = ID_SEPARATOR.join([kind, source, *("" if p is None else str(p) for p in parts)])
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _parse_kind(doc: dict[str, Any], origin: str) -> RecordKind:
    try:
        fields = tuple(
            FieldDef(**{**f, "values": tuple(f["values"]) if f.get("values") else None})
            for f in doc["fields"]
        )
        kind = RecordKind(
            name=doc["kind"],
            table=doc["table"],
            description=doc["description"].strip(),
            key=tuple(doc.get("key") or ()),
            fields=fields,
            parent=doc.get("parent"),
            wco=doc.get("wco"),
            group=doc.get("group", "declarations"),
        )
    except (KeyError, TypeError) as exc:
        raise ModelError(
            f"record kind file {origin} is malformed: {exc}", remedy="see docs/data-dictionary.md"
        ) from exc
    for f in kind.fields:
        if f.type not in ARROW_TYPES:
            raise ModelError(
                f"{origin}: field {f.name!r} has unknown type {f.type!r}", remedy=f"use {sorted(ARROW_TYPES)}"
            )
        if f.classification not in CLASSIFICATIONS:
            raise ModelError(f"{origin}: field {f.name!r} has unknown classification {f.classification!r}")
        if f.codelist and f.codelist not in CODELIST_NAMES:
            raise ModelError(
                f"{origin}: field {f.name!r} names unknown code list {f.codelist!r}",
                remedy=f"use {sorted(CODELIST_NAMES)}",
            )
        if f.identifier and f.identifier not in IDENTIFIER_NAMES:
            raise ModelError(
                f"{origin}: field {f.name!r} names unknown identifier {f.identifier!r}",
                remedy=f"use {sorted(IDENTIFIER_NAMES)}",
            )
        bounds = [b for b in (f.minimum, f.maximum) if b is not None]
        if bounds and f.type not in NUMBER_TYPES:
            raise ModelError(f"{origin}: field {f.name!r} has a minimum or maximum but is not a number")
        if f.type == "int" and any(b != int(b) for b in bounds):
            raise ModelError(f"{origin}: whole-number field {f.name!r} needs whole-number bounds")
        if (f.codelist or f.identifier or f.values) and f.type != "string":
            raise ModelError(
                f"{origin}: field {f.name!r} has a code list, identifier or values but is not a string"
            )
    names = kind.field_names
    if len(set(names)) != len(names) or set(names) & set(PROVENANCE_NAMES):
        raise ModelError(f"{origin}: duplicate field names or a field named like a provenance column")
    for k in kind.key:
        kind.field(k)
    return kind


@lru_cache(maxsize=1)
def load_kinds() -> dict[str, RecordKind]:
    """All canonical record kinds, by name, from the package's ``kinds/*.yaml``."""
    kinds: dict[str, RecordKind] = {}
    for entry in sorted(resources.files("sciti.model").joinpath("kinds").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            kind = _parse_kind(yaml.safe_load(entry.read_text(encoding="utf-8")), entry.name)
            kinds[kind.name] = kind
    for kind in kinds.values():
        if kind.parent and kind.parent not in kinds:
            raise ModelError(f"record kind {kind.name!r} names unknown parent {kind.parent!r}")
    return kinds


def get_kind(name: str) -> RecordKind:
    kinds = load_kinds()
    try:
        return kinds[name]
    except KeyError:
        raise ModelError(f"unknown record kind {name!r}", remedy=f"use one of: {', '.join(kinds)}") from None
