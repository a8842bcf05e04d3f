"""The one policy point: need-to-know per table, masks that keep types, restricted fields, office rows."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.access import (
    AccessError,
    DataPolicy,
    PermissionDenied,
    Principal,
    TableNotReadable,
    open_query,
    permissions_of,
)
from sciti.lake import Lake, open_lake
from sciti.model import get_kind

UTC = dt.UTC


def principal(*roles: str, office: str | None = None, name: str = "") -> Principal:
    return Principal(
        user_id=1,
        username=name or f"u-{'-'.join(roles)}",
        display_name="",
        roles=tuple(roles),
        office_code=office,
        permissions=permissions_of(roles),
    )


def _rows(kind_name: str, rows: list[dict]) -> pa.Table:
    kind = get_kind(kind_name)
    schema = kind.arrow_schema()
    full = [
        {"source": "test", "batch_id": "b1", "ingested_at": dt.datetime(2026, 1, 1, tzinfo=UTC), **r}
        for r in rows
    ]
    return pa.Table.from_pylist(full, schema=schema)


PASSENGERS = [
    {
        "record_id": "p1",
        "record_ref": "R1",
        "voyage_id": "KE123",
        "departure_date": dt.date(2026, 1, 2),
        "surname": "Chen",
        "given_names": "Tai Man",
        "date_of_birth": dt.date(1980, 5, 4),
        "document_number": "M1234567",
        "nationality": "HK",
        "gender": "M",
        "phone": "+852 5555 0101",
        "bags": 2,
    },
    {
        "record_id": "p2",
        "record_ref": "R2",
        "voyage_id": "KE123",
        "departure_date": dt.date(2026, 1, 2),
        "surname": "Wong",
        "given_names": "Mei",
        "date_of_birth": dt.date(1991, 12, 31),
        "document_number": "M1234567",  # the same document as p1: pseudonyms must join
        "nationality": "HK",
        "gender": "F",
    },
    {
        "record_id": "p3",
        "record_ref": "R3",
        "voyage_id": "OZ200",
        "departure_date": dt.date(2026, 1, 3),
        "surname": "Kim",
        "date_of_birth": None,
        "document_number": "X999",
        "nationality": "KR",
    },
]

DECLARATIONS = [
    {"record_id": "d1", "office_code": "KR01"},
    {"record_id": "d2", "office_code": "KR02"},
    {"record_id": "d3", "office_code": "KR01"},
]
ITEMS = [
    {"record_id": "i1", "parent_record_id": "d1"},
    {"record_id": "i2", "parent_record_id": "d2"},
    {"record_id": "i3", "parent_record_id": "d3"},
    {"record_id": "i4", "parent_record_id": "d3"},
]
SEIZURES = [
    {
        "record_id": "s1",
        "seizure_id": "S-1",
        "item_number": 1,
        "seized_at": dt.datetime(2026, 1, 5, tzinfo=UTC),
        "office_code": "KR01",
        "goods_description": "cigarettes",
        "reason": "undeclared",
        "value": Decimal("100.5"),
        "detection_method": "detector dog",
        "concealment_method": "false floor",
        "offender_name": "Lee Ka Ho",
    },
]
CASES = [{"record_id": "c1"}]


def _fill(kind_name: str, rows: list[dict]) -> list[dict]:
    """Required key fields get a value so every row is well-formed."""
    kind = get_kind(kind_name)
    out = []
    for i, r in enumerate(rows):
        row = dict(r)
        for f in kind.fields:
            if f.required and row.get(f.name) is None:
                row[f.name] = {"string": f"{f.name}-{i}", "int": i, "date": dt.date(2026, 1, 1)}.get(f.type)
        out.append(row)
    return out


def build_world(lake: Lake) -> Lake:
    for kind_name, rows in (
        ("passenger", PASSENGERS),
        ("declaration", DECLARATIONS),
        ("declaration_item", ITEMS),
        ("seizure", SEIZURES),
        ("case", CASES),
    ):
        kind = get_kind(kind_name)
        lake.ensure_table(kind.ident, kind.arrow_schema())
        lake.append(kind.ident, _rows(kind_name, _fill(kind_name, rows)))
    raw = pa.table({"line": ["Chen,M1234567"]})
    lake.ensure_table("raw.api_feed", raw.schema)
    lake.append("raw.api_feed", raw)
    sec = pa.table({"event": ["login.failed"]})
    lake.ensure_table("sec.events", sec.schema)
    lake.append("sec.events", sec)
    return lake


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("policy") / "instance"
    home.mkdir()
    s = make_settings(home)
    return build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))


def rows_of(lake: Lake, who: Principal, sql: str, **kw) -> list[dict]:
    result = open_query(lake, who, sql, **kw)
    return result.reader.read_all().to_pylist()


@pytest.mark.parametrize(
    ("role", "table", "readable"),
    [
        ("analyst", "std.passengers", True),
        ("analyst", "std.cases", True),
        ("targeting_officer", "std.cases", False),  # intelligence needs intel.read
        ("supervisor", "std.cases", True),
        ("analyst", "raw.api_feed", False),  # raw data is for data engineers
        ("data_engineer", "raw.api_feed", True),
        ("administrator", "raw.api_feed", True),
        ("analyst", "sec.events", False),  # security logs: security officers only
        ("administrator", "sec.events", False),
        ("security_officer", "sec.events", True),
        ("security_officer", "std.declarations", True),
        ("analyst", "risk.scores", True),
        ("data_engineer", "risk.scores", False),
        ("viewer", "std.declarations", False),  # no sql.query
        ("partner", "std.declarations", True),  # a shared kind (rows still filtered)
        ("partner", "std.passengers", False),
        ("analyst", "other.anything", False),  # no rule: nobody
        ("analyst", "STD.Passengers", True),
    ],
)
def test_need_to_know_per_table(role: str, table: str, readable: bool) -> None:
    assert DataPolicy(principal(role)).can_read(table) is readable


def test_personal_fields_are_masked_and_keep_their_types(world: Lake) -> None:
    got = rows_of(world, principal("analyst"), "SELECT * FROM std.passengers ORDER BY record_ref")
    chen, wong, kim = got
    assert (chen["surname"], chen["given_names"]) == ("C***", "T** M**")
    assert chen["date_of_birth"] == dt.date(1980, 1, 1) and isinstance(wong["date_of_birth"], dt.date)
    assert kim["date_of_birth"] is None
    assert re.fullmatch(r"pn:[0-9a-f]{12}", chen["document_number"])
    assert chen["document_number"] == wong["document_number"] != kim["document_number"]
    assert chen["gender"] is None and chen["phone"].startswith("pn:")
    assert chen["nationality"] == "HK" and chen["bags"] == 2, "fields that are not personal stay clear"
    text = repr(got)
    for clear in ("Chen", "Tai Man", "M1234567", "5555", "1980-05-04"):
        assert clear not in text


def test_pseudonyms_join_within_a_query_but_not_across_queries(world: Lake) -> None:
    who = principal("analyst")
    sql = (
        "SELECT a.record_ref, b.record_ref AS other, a.document_number FROM std.passengers a "
        "JOIN std.passengers b ON a.document_number = b.document_number AND a.record_ref < b.record_ref"
    )
    first = rows_of(world, who, sql)
    assert [(r["record_ref"], r["other"]) for r in first] == [("R1", "R2")]
    again = rows_of(world, who, sql)
    assert again[0]["document_number"] != first[0]["document_number"], "a new salt for every query"


def test_unmask_needs_the_permission_and_a_purpose(world: Lake) -> None:
    sql = "SELECT surname, document_number FROM std.passengers WHERE record_ref = 'R1'"
    clear = rows_of(world, principal("analyst"), sql, unmask=True, purpose="case 2026-1: identify courier")
    assert clear == [{"surname": "Chen", "document_number": "M1234567"}]
    with pytest.raises(PermissionDenied):
        open_query(world, principal("data_engineer"), sql, unmask=True, purpose="curious")
    with pytest.raises(AccessError, match="purpose"):
        open_query(world, principal("analyst"), sql, unmask=True, purpose="  ")


def test_restricted_fields_are_hidden_without_intel_read(world: Lake) -> None:
    sql = "SELECT detection_method, concealment_method, value, offender_name FROM std.seizures"
    officer = rows_of(world, principal("targeting_officer"), sql)
    assert officer == [
        {
            "detection_method": None,
            "concealment_method": None,
            "value": Decimal("100.5"),
            "offender_name": "L** K* H*",
        }
    ]
    analyst = rows_of(world, principal("analyst"), sql)
    assert analyst[0]["detection_method"] == "detector dog"


@pytest.mark.parametrize(
    ("office", "declarations", "items"),
    [("KR01", ["d1", "d3"], ["i1", "i3", "i4"]), ("KR02", ["d2"], ["i2"]), (None, ["d1", "d2", "d3"], None)],
)
def test_an_office_sees_its_own_rows_and_their_children(world: Lake, office, declarations, items) -> None:
    who = principal("targeting_officer", office=office)
    got = rows_of(world, who, "SELECT record_id FROM std.declarations ORDER BY 1")
    assert [r["record_id"] for r in got] == declarations
    kids = rows_of(world, who, "SELECT record_id FROM std.declaration_items ORDER BY 1")
    assert [r["record_id"] for r in kids] == (items or ["i1", "i2", "i3", "i4"])
    # Aggregates and joins cannot see around the filter either.
    (count,) = rows_of(
        world,
        who,
        "SELECT count(*) AS n FROM std.declaration_items JOIN std.declarations "
        "ON parent_record_id = std.declarations.record_id",
    )
    assert count["n"] == len(items or ITEMS)


def test_tables_outside_need_to_know_read_as_unknown(world: Lake) -> None:
    with pytest.raises(TableNotReadable, match="does not exist or"):
        open_query(world, principal("targeting_officer"), "SELECT * FROM std.cases")
    with pytest.raises(TableNotReadable):
        open_query(world, principal("analyst"), "SELECT * FROM raw.api_feed")


def test_partner_sees_only_shared_rows_and_fields(world: Lake) -> None:
    # Shared kinds without sharing marks share no rows; other kinds do not exist for a partner.
    partner = principal("partner", office="JP")
    assert rows_of(world, partner, "SELECT * FROM std.seizures") == []
    with pytest.raises(TableNotReadable):
        open_query(world, partner, "SELECT * FROM std.passengers")


def test_records_outside_sql_get_the_same_masks(world: Lake) -> None:
    """mask_record (for API objects and web pages) matches the SQL views value for value."""
    policy = DataPolicy(principal("targeting_officer"))
    clear = rows_of(world, principal("analyst"), "SELECT * FROM std.passengers WHERE record_ref = 'R1'",
                    unmask=True, purpose="test")[0]  # fmt: skip
    masked = policy.mask_record("std.passengers", clear)
    assert (masked["surname"], masked["given_names"], masked["gender"]) == ("C***", "T** M**", None)
    assert masked["date_of_birth"] == dt.date(1980, 1, 1) and masked["nationality"] == "HK"
    salted = f"'{policy.salt}'"
    (row,) = rows_of(
        world, principal("analyst"), f"SELECT 'pn:' || left(sha256({salted} || 'M1234567'), 12) AS p"
    )
    assert masked["document_number"] == row["p"]
    seizure = {"detection_method": "dog", "offender_name": "Lee Ka Ho", "reason": "x"}
    assert policy.mask_record("std.seizures", seizure) == {
        "detection_method": None,
        "offender_name": "L** K* H*",
        "reason": "x",
    }
    assert policy.mask_record("raw.api_feed", {"line": "a"}) == {"line": "a"}


@pytest.mark.parametrize(
    "who",
    [principal("analyst"), principal("targeting_officer", office="KR01"), principal("partner", office="JP")],
    ids=["analyst", "office-bound", "partner"],
)
def test_every_record_kind_gets_valid_views(tmp_path, who: Principal) -> None:
    """The masks and row rules written for each kind's fields are valid SQL for that kind's table."""
    from sciti.model import load_kinds
    from tests.conftest import make_settings

    (tmp_path / "i").mkdir()
    s = make_settings(tmp_path / "i")
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    policy = DataPolicy(who)
    readable = 0
    for kind in load_kinds().values():
        lake.ensure_table(kind.ident, kind.arrow_schema())
    for kind in load_kinds().values():
        if not policy.can_read(kind.ident):
            continue
        readable += 1
        result = open_query(lake, who, f"SELECT * FROM {kind.ident}").reader.read_all()
        assert result.schema.names == kind.arrow_schema().names, kind.name
        expected = kind.arrow_schema()
        for name in expected.names:  # masks keep each column's type
            assert result.schema.field(name).type == expected.field(name).type, (kind.name, name)
    assert readable >= 3
