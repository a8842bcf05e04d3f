"""The record kinds in src/sciti/model/kinds: they load, link, classify personal data and derive schemas."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sciti.model import PROVENANCE_NAMES, ModelError, get_kind, load_kinds
from sciti.model.schema import _parse_kind

MINE = {
    "road_cargo_info": "road",
    "conveyance_crossing": "border",
    "currency_declaration": "persons",
    "passenger": "persons",
    "inspection_result": "enforcement",
    "seizure": "enforcement",
    "case": "enforcement",
}


@pytest.mark.parametrize(("name", "group"), sorted(MINE.items()))
def test_kind_group_and_schema(name: str, group: str) -> None:
    kind = get_kind(name)
    assert kind.group == group
    schema = kind.arrow_schema()
    assert tuple(schema.names[: len(PROVENANCE_NAMES)]) == PROVENANCE_NAMES
    assert schema.names[len(PROVENANCE_NAMES) :] == list(kind.field_names)
    assert all(kind.field(k).required for k in kind.key), "key fields must be mandatory"
    assert all(f.description.endswith(".") for f in kind.fields)


PERSONAL = [
    ("road_cargo_info", "driver_name"),
    ("road_cargo_info", "driver_document_number"),
    ("road_cargo_info", "driver_date_of_birth"),
    ("road_cargo_info", "driver_phone"),
    ("conveyance_crossing", "driver_name"),
    ("currency_declaration", "person_name"),
    ("currency_declaration", "document_number"),
    ("currency_declaration", "date_of_birth"),
    ("passenger", "surname"),
    ("passenger", "given_names"),
    ("passenger", "date_of_birth"),
    ("passenger", "document_number"),
    ("passenger", "phone"),
    ("seizure", "offender_name"),
    ("case", "suspects"),
]


@pytest.mark.parametrize(("kind", "field"), PERSONAL)
def test_personal_data_is_classified(kind: str, field: str) -> None:
    assert get_kind(kind).field(field).classification == "personal"


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("inspection_result", "selection_reason"),
        ("inspection_result", "risk_rule_id"),
        ("seizure", "detection_method"),
        ("case", "intelligence_source"),
    ],
)
def test_intelligence_is_restricted(kind: str, field: str) -> None:
    assert get_kind(kind).field(field).classification == "restricted"


@pytest.mark.parametrize(
    ("kind", "field", "rule"),
    [
        ("road_cargo_info", "container_id", ("identifier", "iso6346")),
        ("conveyance_crossing", "vessel_imo", ("identifier", "imo")),
        ("seizure", "hs_code", ("codelist", "hs")),
        ("currency_declaration", "currency", ("codelist", "currency")),
        ("passenger", "nationality", ("codelist", "country")),
        ("road_cargo_info", "loading_place", ("codelist", "unlocode")),
    ],
)
def test_checked_fields(kind: str, field: str, rule: tuple[str, str]) -> None:
    assert getattr(get_kind(kind).field(field), rule[0]) == rule[1]


@pytest.mark.parametrize(
    ("kind", "field", "low", "high"),
    [
        ("declaration_item", "net_mass_kg", 0, None),
        ("declaration_item", "item_price", 0, None),
        ("currency_declaration", "amount", 0, None),
        ("elock_fix", "latitude", -90, 90),
        ("elock_fix", "battery_pct", 0, 100),
    ],
)
def test_numbers_with_a_range(kind: str, field: str, low: float, high: float | None) -> None:
    f = get_kind(kind).field(field)
    assert (f.minimum, f.maximum) == (low, high)


def test_enumerations_load_as_tuples() -> None:
    assert get_kind("conveyance_crossing").field("direction").values == ("IN", "OUT")
    assert get_kind("inspection_result").field("fraud").arrow_type == pa.bool_()


BROKEN = [
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "text", "description": "d"}],
        },
        "unknown type",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "string", "codelist": "colours", "description": "d"}],
        },
        "unknown code list",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "string", "identifier": "vin", "description": "d"}],
        },
        "unknown identifier",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "int", "codelist": "hs", "description": "d"}],
        },
        "not a string",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "source", "type": "string", "description": "d"}],
        },
        "provenance",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "key": ["b"],
            "fields": [{"name": "a", "type": "string", "description": "d"}],
        },
        "no field",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "string", "minimum": 0, "description": "d"}],
        },
        "not a number",
    ),
    (
        {
            "kind": "k",
            "table": "t",
            "description": "d",
            "fields": [{"name": "a", "type": "int", "maximum": 2.5, "description": "d"}],
        },
        "whole-number bounds",
    ),
    ({"kind": "k", "table": "t", "fields": []}, "malformed"),
]


@pytest.mark.parametrize(("doc", "message"), BROKEN)
def test_broken_kind_files_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        _parse_kind(doc, "test.yaml")


def test_every_kind_has_a_known_group() -> None:
    from sciti.model.dictionary import GROUP_ORDER

    assert {k.group for k in load_kinds().values()} <= set(GROUP_ORDER)
