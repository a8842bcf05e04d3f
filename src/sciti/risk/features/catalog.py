"""The names a rule or model may use per subject kind: canonical fields plus derived features.

Derived features are data (``data/features.yaml``); canonical fields come from the record kinds.
For a declaration the subject is one goods item: header fields plus the item's fields, item
winning where both kinds name the same field (procedure_code, gross_mass_kg, customs_value).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from sciti.model import FieldDef, get_kind
from sciti.risk.errors import FeatureError

SUBJECT_KINDS = ("declaration", "consignment", "road_cargo_info", "passenger", "currency_declaration")

# Canonical field type -> the type a rule sees.
_TYPES = {
    "string": "text",
    "int": "number",
    "float": "number",
    "decimal": "number",
    "bool": "bool",
    "date": "date",
    "timestamp": "date",
}
# Link columns of a child kind that repeat the parent's key under another name.
_LINKS = {"declaration_version"}


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # number | text | bool | date
    description: str
    derived: bool = False
    explain: str | None = None  # template for explanations (derived features only)
    explain_no: str | None = None  # template when a yes/no feature is false
    explain_unseen: str | None = None  # template when a rate has no past inspections behind it
    classification: str = "internal"  # the field's data classification (model YAML)


@lru_cache(maxsize=1)
def config() -> dict[str, Any]:
    """features.yaml as loaded (shared, read-only)."""
    text = resources.files("sciti.risk.features").joinpath("data/features.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _kind_config(kind: str) -> dict[str, Any]:
    kinds = config()["kinds"]
    if kind not in kinds:
        raise FeatureError(
            f"record kind {kind!r} has no risk scope",
            remedy=f"use one of: {', '.join(SUBJECT_KINDS)}",
        )
    return kinds[kind]


@lru_cache(maxsize=16)
def parent_fields(kind: str) -> tuple[FieldDef, ...]:
    """The parent record's fields a subject row of ``kind`` carries (features.yaml ``from_parent``),
    as the parent kind defines them: a consignment carries its manifest's ``customs_office``."""
    names = _kind_config(kind).get("from_parent") or []
    if not names:
        return ()
    own = get_kind(kind)
    where = f"features.yaml: kinds.{kind}.from_parent"
    if not own.parent:
        raise FeatureError(f"{where}: record kind {kind!r} has no parent", remedy="remove from_parent")
    parent = get_kind(own.parent)
    out = []
    for name in names:
        if name in own.field_names:  # the row would hold two values under one name
            raise FeatureError(
                f"{where}: {name!r} is a field of {kind} itself", remedy=f"remove {name!r} from from_parent"
            )
        if name not in parent.field_names:
            raise FeatureError(
                f"{where}: {own.parent} has no field {name!r}",
                remedy=f"name fields of {own.parent}: {', '.join(parent.field_names)}",
            )
        out.append(parent.field(name))
    return tuple(out)


@lru_cache(maxsize=16)
def _columns(kind: str) -> dict[str, ColumnInfo]:
    cfg = _kind_config(kind)
    out: dict[str, ColumnInfo] = {
        "record_id": ColumnInfo(
            "record_id", "text", "Lake record id of the subject (the goods item for a declaration)."
        )
    }
    for base in cfg["base"]:
        for f in get_kind(base).fields:
            if f.name in _LINKS:
                continue
            out[f.name] = ColumnInfo(
                f.name, _TYPES[f.type], f.description.strip(), classification=f.classification
            )
    parent = get_kind(kind).parent
    for f in parent_fields(kind):  # named as the scored row carries them (decision 0116)
        described = f"{f.description.strip()} Taken from the record's {parent}."
        out[f.name] = ColumnInfo(f.name, _TYPES[f.type], described, classification=f.classification)
    for feat in cfg["features"]:
        out[feat["name"]] = ColumnInfo(
            feat["name"],
            feat["type"],
            feat["description"],
            derived=True,
            explain=feat.get("explain"),
            explain_no=feat.get("explain_no"),
            explain_unseen=feat.get("explain_unseen"),
        )
    return out


def columns(kind: str) -> dict[str, ColumnInfo]:
    """Every name a rule or model may use for ``kind``, with type and plain-language description."""
    return dict(_columns(kind))


def feature_names(kind: str) -> list[str]:
    """The derived features of ``kind`` (in features.yaml order)."""
    return list(_feature_names(kind))


@lru_cache(maxsize=16)  # real time asks per record
def _feature_names(kind: str) -> tuple[str, ...]:
    return tuple(f["name"] for f in _kind_config(kind)["features"])
