"""What the officers' queue keeps of a record fits its columns, for every assessed kind.

The record kinds' YAML bounds each reference and office field (``max_length``); ingest quarantines
a longer value and the assessment API refuses it. These bounds must fit the operational tables,
else a value the lake took would make PostgreSQL refuse a scoring run or a group commit.
"""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy import String, Table

from sciti.model import get_kind, load_kinds
from sciti.ops.models import User
from sciti.ops.risk_tables import RiskCapacityUse, RiskQueueItem
from sciti.risk.engine.inputs import INT64
from sciti.risk.engine.subjects import SUBJECTS, field_def


def width(model: type, column: str) -> int:
    return int(cast(String, cast(Table, model.__table__).c[column].type).length)


def longest(kind: str, name: str) -> int:
    f = field_def(kind, name)  # a consignment's office is its manifest's field
    if f.type == "int":
        return len(str(INT64[0]))
    assert f.type == "string" and f.max_length, f"{kind}.{name} needs a max_length in its YAML"
    return f.max_length


@pytest.mark.parametrize("kind", sorted(SUBJECTS))
def test_the_longest_reference_fits_the_queue(kind: str) -> None:
    parts = SUBJECTS[kind].ref_fields
    joined = sum(longest(kind, name) for name in parts) + len(parts) - 1  # "/" between parts
    assert joined <= width(RiskQueueItem, "subject_ref")


@pytest.mark.parametrize(
    ("kind", "office"),
    [(kind, office) for kind in sorted(SUBJECTS) for office in SUBJECTS[kind].office_fields],
)
def test_the_longest_office_fits_every_table_that_keeps_one(kind: str, office: str) -> None:
    # Ingest and real time both refuse a longer office: the kind's YAML bounds it.
    assert field_def(kind, office).max_length is not None, f"{kind}.{office} needs max_length"
    for model in (RiskQueueItem, RiskCapacityUse, User):  # a user's office scopes what they see
        assert longest(kind, office) <= width(model, "office_code"), model.__name__


def test_a_declaration_id_has_one_bound_in_every_kind() -> None:
    """An item, party or inspection names its declaration by id: a longer id than a declaration may
    hold could never be linked to a stored declaration, so it is quarantined on arrival too."""
    bounds = {
        name: kind.field("declaration_id").max_length
        for name, kind in load_kinds().items()
        if "declaration_id" in kind.field_names
    }
    assert len(bounds) >= 7 and set(bounds.values()) == {
        get_kind("declaration").field("declaration_id").max_length
    }
