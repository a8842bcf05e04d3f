"""Office-bound accounts see only records handled at their office, in every record kind (decision
0101): where a record was handled is its kind's field in ``rows.office_fields`` of policy.yaml —
the customs office, or the control point (office and control point codes are one list: HKIA is
both). Passengers, currency declarations, conveyance crossings and manifests (with their
consignments and equipment) were once read in full by an account bound to one office."""

from __future__ import annotations

import pytest

from sciti.access import open_query, policy_config
from sciti.access.policy import FOLLOWS, FOLLOWS_PARENT, _office_fields
from sciti.lake import Lake, open_lake
from sciti.model import get_kind, load_kinds
from sciti.ops import migrate
from tests.access.test_policy import _fill, _rows, principal
from tests.api.conftest import bearer, make_client

PASSENGERS = [
    {"record_id": "p-hkia-1", "control_point": "HKIA", "arrival_port": "HKHKG"},
    {"record_id": "p-hkia-2", "control_point": "HKIA", "arrival_port": "HKHKG"},
    {"record_id": "p-lmc", "control_point": "LMC", "arrival_port": "HKHKG"},
    {"record_id": "p-szb", "control_point": "SZB", "arrival_port": "HKHKG"},
    {"record_id": "p-none", "control_point": None, "arrival_port": "HKHKG"},
]
CURRENCY = [
    {"record_id": "c-hkia", "control_point": "HKIA"},
    {"record_id": "c-lmc", "control_point": "LMC"},
]
CROSSINGS = [
    {"record_id": "x-hkia", "control_point": "HKIA", "crossing_id": "X1"},
    {"record_id": "x-szb", "control_point": "SZB", "crossing_id": "X2"},
]
MANIFESTS = [
    {"record_id": "m-hkia", "customs_office": "HKIA", "manifest_id": "M1"},
    {"record_id": "m-ktct", "customs_office": "KTCT", "manifest_id": "M2"},
]
CONSIGNMENTS = [
    {"record_id": "k-hkia", "parent_record_id": "m-hkia", "manifest_id": "M1"},
    {"record_id": "k-ktct", "parent_record_id": "m-ktct", "manifest_id": "M2"},
]
EQUIPMENT = [
    {"record_id": "e-hkia", "parent_record_id": "k-hkia", "manifest_id": "M1"},
    {"record_id": "e-ktct", "parent_record_id": "k-ktct", "manifest_id": "M2"},
]
ROAD = [
    {"record_id": "r-in", "entry_control_point": "LMC"},
    {"record_id": "r-out", "exit_control_point": "LMC"},
    {"record_id": "r-szb", "entry_control_point": "SZB"},
]
# A customs response carries no office: it follows the declaration it answers, by the MRN or by
# the LRN an original was lodged under (decision 0122); its duty lines follow the response.
DECLARATIONS = [
    {"record_id": "d-hkia", "office_code": "HKIA", "declaration_id": "MRN-H", "version": 1},
    {"record_id": "d-lmc", "office_code": "LMC", "declaration_id": "LRN-L", "version": 1},
]
RESPONSES = [
    {"record_id": "cr-hkia", "response_id": "R1", "declaration_id": "MRN-H", "lrn": "LRN-H"},
    {"record_id": "cr-lmc", "response_id": "R2", "declaration_id": "MRN-L", "lrn": "LRN-L"},
    {"record_id": "cr-none", "response_id": "R3", "declaration_id": "MRN-Z", "lrn": None},
]
DUTIES = [
    {"record_id": "cd-hkia", "parent_record_id": "cr-hkia", "response_id": "R1"},
    {"record_id": "cd-lmc", "parent_record_id": "cr-lmc", "response_id": "R2"},
    {"record_id": "cd-none", "parent_record_id": "cr-none", "response_id": "R3"},
]
WORLD = {
    "declaration": DECLARATIONS,
    "customs_response": RESPONSES,
    "customs_response_duty": DUTIES,
    "passenger": PASSENGERS,
    "currency_declaration": CURRENCY,
    "conveyance_crossing": CROSSINGS,
    "manifest": MANIFESTS,
    "consignment": CONSIGNMENTS,
    "transport_equipment": EQUIPMENT,
    "road_cargo_info": ROAD,
}


def _build(lake: Lake) -> Lake:
    for kind_name, rows in WORLD.items():
        kind = get_kind(kind_name)
        lake.ensure_table(kind.ident, kind.arrow_schema())
        lake.append(kind.ident, _rows(kind_name, _fill(kind_name, rows)))
    return lake


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory):
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("offices") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    _build(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
    return s


@pytest.fixture(scope="module")
def lake(instance) -> Lake:
    return open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)


def _ids(lake: Lake, office: str | None, table: str) -> list[str]:
    result = open_query(lake, principal("targeting_officer", office=office), f"SELECT record_id FROM {table}")
    return sorted(r["record_id"] for r in result.reader.read_all().to_pylist())


def test_every_record_kind_says_where_its_records_are_handled() -> None:
    """A kind added later must be placed in one list or the other, not left to a default."""
    config = policy_config()
    assert set(config.office_fields) == set(load_kinds())
    for name, fields in config.office_fields.items():
        kind = get_kind(name)
        if fields and fields[0].startswith(FOLLOWS):
            assert get_kind(fields[0][len(FOLLOWS) :]) and set(fields[1:]) <= set(kind.field_names), name
            continue
        assert fields == (FOLLOWS_PARENT,) and kind.parent or set(fields) <= set(kind.field_names), name


@pytest.mark.parametrize(
    ("table", "hkia", "lmc"),
    [
        ("std.passengers", ["p-hkia-1", "p-hkia-2"], ["p-lmc"]),
        ("std.currency_declarations", ["c-hkia"], ["c-lmc"]),
        ("std.conveyance_crossings", ["x-hkia"], []),
        ("std.manifests", ["m-hkia"], []),
        ("std.consignments", ["k-hkia"], []),
        ("std.transport_equipment", ["e-hkia"], []),
        ("std.road_cargo_info", [], ["r-in", "r-out"]),  # entering or leaving at the office
        ("std.customs_responses", ["cr-hkia"], ["cr-lmc"]),  # by the MRN; by the LRN
        ("std.customs_response_duties", ["cd-hkia"], ["cd-lmc"]),
    ],
)
def test_an_office_bound_account_reads_its_office_only(lake: Lake, table, hkia, lmc) -> None:
    assert _ids(lake, "HKIA", table) == hkia
    assert _ids(lake, "LMC", table) == lmc
    every = sorted(r["record_id"] for rows in WORLD.values() for r in rows if _table_of(r, table))
    assert _ids(lake, None, table) == every  # an account without an office sees every office


def _table_of(row: dict, table: str) -> bool:
    return any(row in rows and get_kind(k).ident == table for k, rows in WORLD.items())


def test_counts_and_joins_cannot_see_around_it(lake: Lake) -> None:
    hkia = principal("targeting_officer", office="HKIA")
    sql = (
        "SELECT (SELECT count(*) FROM std.passengers) AS passengers, "
        "(SELECT count(DISTINCT control_point) FROM std.passengers) AS places, "
        "(SELECT count(*) FROM std.transport_equipment e JOIN std.consignments c "
        " ON e.parent_record_id = c.record_id) AS equipment"
    )
    (row,) = open_query(lake, hkia, sql).reader.read_all().to_pylist()
    assert row == {"passengers": 2, "places": 1, "equipment": 1}


def test_sql_over_http_applies_it(instance) -> None:
    from sciti.access import create_user, issue_token
    from sciti.ops import session_scope

    with session_scope(instance.resolved_ops_db_url) as s:
        user, _ = create_user(s, "hkia-officer", ["targeting_officer"], office_code="HKIA", service=True)
        headers = bearer(issue_token(s, user, 60).token)
    with make_client(instance) as client:
        for sql, expected in (
            (
                "SELECT control_point, count(*) AS n FROM std.passengers GROUP BY 1",
                [{"control_point": "HKIA", "n": 2}],
            ),
            (
                "SELECT control_point, count(*) AS n FROM std.currency_declarations GROUP BY 1",
                [{"control_point": "HKIA", "n": 1}],
            ),
        ):
            answer = client.post("/api/v1/sql", headers=headers, json={"sql": sql})
            assert answer.status_code == 200, answer.text
            assert answer.json()["rows"] == expected, sql
        export = client.post(
            "/api/v1/sql/export",
            headers=headers,
            json={"sql": "SELECT record_id FROM std.passengers ORDER BY 1", "format": "csv"},
        )
        assert [line.strip('"') for line in export.text.split()] == ["record_id", "p-hkia-1", "p-hkia-2"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"follows": "no_such_kind", "by": ["declaration_id"]}, "with a known kind"),
        ({"follows": "declaration", "by": []}, "with a known kind"),
        ({"follows": "declaration", "by": ["lrn"], "also": 1}, "with a known kind"),
        ({"follows": "declaration", "by": ["no_such_field"]}, "are not all fields of 'customs_response'"),
    ],
)
def test_a_follows_entry_is_checked(entry: dict, words: str) -> None:
    """A misspelt entry would hide a kind from every office, or show it to all: refused at load."""
    with pytest.raises(ValueError, match=words):
        _office_fields({"office_fields": {"customs_response": entry}}, load_kinds())
