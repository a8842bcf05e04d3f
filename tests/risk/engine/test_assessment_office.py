"""An assessment's office is where its record is handled (decision 0103), the same in both paths.

Passengers are worked at the control point they cross (HKIA), not at the flight's airports
(HKHKG, UN/LOCODEs): an officer bound to HKIA must find them in the queue. Which field names the
office is data, one place per kind (``subjects.SUBJECTS``), and agrees with the access policy's
binding of the same kinds.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from sciti.access.policy import policy_config
from sciti.model import get_kind
from sciti.risk.engine import Assessor
from sciti.risk.engine.subjects import SUBJECTS, field_def, office_column, office_of

EXPECTED = {
    "declaration": ("office_code",),
    "consignment": ("customs_office",),  # its manifest's office, which its scored row takes (0108)
    "road_cargo_info": ("entry_control_point", "exit_control_point"),
    "passenger": ("control_point",),
    "currency_declaration": ("control_point",),
}


def test_each_kind_takes_its_office_from_where_it_is_handled() -> None:
    assert {kind: s.office_fields for kind, s in SUBJECTS.items()} == EXPECTED
    # Never a port or airport: those are UN/LOCODE or IATA codes, not an office an account has.
    for kind, s in SUBJECTS.items():
        for name in s.office_fields:
            f = field_def(kind, name)
            assert f.codelist != "unlocode" and "port" not in name, (kind, name)


@pytest.mark.parametrize("kind", sorted(SUBJECTS))
def test_the_office_agrees_with_the_access_policy(kind: str) -> None:
    """The queue's office and the lake's row rule bind the same field, so an officer sees in the
    queue the records SQL shows them. A field the scored row takes from the record's parent (a
    consignment's manifest's ``customs_office``) is bound in the lake through the parent: the
    kind follows its parent's rows, and the parent is bound by that very field."""
    policy = policy_config()
    record_kind = get_kind(kind)
    bound = policy.office_fields_of(record_kind)
    own = [name for name in SUBJECTS[kind].office_fields if name in record_kind.field_names]
    taken = [name for name in SUBJECTS[kind].office_fields if name not in record_kind.field_names]
    assert set(own) <= set(bound), (own, bound)
    if taken:
        assert not own and bound == ("parent",), bound
        assert set(taken) <= set(policy.office_fields_of(get_kind(record_kind.parent or ""))), taken
    assert own or taken, f"{kind} assessments would have no office: no office-bound officer sees them"


def test_the_first_field_with_a_value_wins_in_python_and_arrow() -> None:
    rows = [
        {"entry_control_point": "LMC", "exit_control_point": None},
        {"entry_control_point": None, "exit_control_point": "SZB"},  # an outbound truck
        {"entry_control_point": "", "exit_control_point": "SZB"},  # blank is no value
        {"entry_control_point": None, "exit_control_point": None},
    ]
    expected = ["LMC", "SZB", "SZB", None]
    assert [office_of("road_cargo_info", r) for r in rows] == expected
    assert office_column("road_cargo_info", pa.Table.from_pylist(rows)).to_pylist() == expected
    pax = {"arrival_port": "HKHKG", "control_point": "HKIA"}
    assert office_of("passenger", pax) == "HKIA"
    assert office_column("passenger", pa.Table.from_pylist([pax])).to_pylist() == ["HKIA"]
    only_port = pa.Table.from_pylist([{"arrival_port": "HKHKG"}])  # no control point: no office
    assert office_column("passenger", only_port).to_pylist() == [None]
    assert office_of("consignment", {"discharge_location": "HKHKG"}) is None  # a port is no office
    assert office_of("consignment", {"discharge_location": "HKHKG", "customs_office": "KTCT"}) == "KTCT"


def test_a_passenger_is_assessed_for_its_control_point_in_real_time_and_batch(kcs) -> None:
    assessor = Assessor.load(kcs, kinds=("passenger",))
    record = {
        "record_ref": "PNR-OFFICE-1",
        "voyage_id": "CX0501",
        "departure_date": date(2026, 11, 20),
        "surname": "CHAN",
        "arrival_port": "HKHKG",
        "control_point": "HKIA",
    }
    (single,) = assessor.assess("passenger", [record])
    assert single.office_code == "HKIA"
    table = pa.Table.from_pylist([{**record, "record_id": single.record_id}])
    (batch,) = assessor.assess_batch("passenger", table, explain="all").to_pylist()
    assert batch["office_code"] == "HKIA" and batch["record_id"] == single.record_id
