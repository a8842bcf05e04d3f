"""Fixtures for the model tests: the published code lists and a kind with one field of every sort."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.model import CodeLists, FieldDef, RecordKind, load_codelists


@pytest.fixture(scope="session")
def codelists(shared_data: Path) -> CodeLists:
    return load_codelists(shared_data / "codelists")


@pytest.fixture(scope="session")
def every_kind() -> RecordKind:
    """A record kind built in code with one field per type, code list, identifier and rule."""
    fields = (
        FieldDef("ref", "string", "Reference.", required=True),
        FieldDef("n", "int", "A whole number."),
        FieldDef("x", "float", "A number."),
        FieldDef("amount", "decimal", "An amount."),
        FieldDef("flag", "bool", "A yes/no."),
        FieldDef("day", "date", "A date."),
        FieldDef("at", "timestamp", "A time."),
        FieldDef("hs", "string", "HS code.", codelist="hs"),
        FieldDef("country", "string", "Country.", codelist="country"),
        FieldDef("currency", "string", "Currency.", codelist="currency"),
        FieldDef("place", "string", "UN/LOCODE.", codelist="unlocode"),
        FieldDef("container", "string", "Container.", identifier="iso6346"),
        FieldDef("imo", "string", "Ship.", identifier="imo"),
        FieldDef("direction", "string", "Direction.", values=("IN", "OUT")),
        FieldDef("short", "string", "Short text.", max_length=5),
        FieldDef("mass", "float", "A mass.", minimum=0),
        FieldDef("count", "int", "A count.", minimum=0),
        FieldDef("price", "decimal", "A price.", minimum=0),
        FieldDef("lat", "float", "A latitude.", minimum=-90, maximum=90),
    )
    return RecordKind(name="every", table="every", description="Test kind.", key=("ref",), fields=fields)
