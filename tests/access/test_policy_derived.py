"""Need-to-know beyond the record kinds' tables (decision 0081): risk results follow the office rule,
tables made from the watch list get its permission and masks, intelligence needs ``intel.read`` and
security logs ``security.read`` — on the SQL path (``sciti sql``, POST /api/v1/sql, the web SQL
page and exports all call ``open_query``) and in the rules pages apply without ``sql.query``."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from sciti.access import DataPolicy, Principal, TableNotReadable, open_query, policy_config
from sciti.lake import Lake, open_lake
from sciti.model import get_kind, load_kinds
from sciti.risk.engine import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.features.reference import TABLES as REFERENCE_TABLES
from tests.access.test_policy import _fill, _rows, principal

UTC = dt.UTC
WATCHED_NAME = "CHAN SIU MING"
WATCHED_DOCUMENT = "A988272(6)"
REPORT_TEXT = "Informant says container MSCU1234567 hides cigarettes"
OFFICES = ["HKIA", "HKIA", "KTCT", "40", None]


def _reference_tables() -> dict[str, pa.Table]:
    """risk.reference_* as ``save_reference`` writes them (one snapshot)."""
    snap = pa.array(["s1"] * 2)
    return {
        "risk.reference_watchlist": pa.table(
            {"value": [WATCHED_NAME, WATCHED_DOCUMENT], "snapshot_id": snap}
        ),
        "risk.reference_history": pa.table(
            {
                "grp": ["office", "trader"],
                "key": ["KTCT", "IMP-1"],
                "declarations": [120, 7],
                "inspections": [30, 2],
                "frauds": [9, 1],
                "hit_rate": [0.3, 0.4],
                "snapshot_id": snap,
            }
        ),
        "risk.reference_bands": pa.table(
            {
                "level": ["hs6", "hs6"],
                "key": ["value|851712", "price|851712"],
                "median_uv": [10.0, 12.0],
                "snapshot_id": snap,
            }  # fmt: skip
        ),
        "risk.reference_parties": pa.table(
            {"party_id": ["IMP-1", "IMP-2"], "aeo_status": ["AEO-F", "AEO-C"], "snapshot_id": snap}
        ),
        "risk.reference_meta": pa.table({"snapshot_id": ["s1"], "prior": [0.1]}),
        "ref.watchlist": pa.table(
            {"name": [WATCHED_NAME], "document_number": [WATCHED_DOCUMENT], "party_id": ["P-77"]}
        ),  # fmt: skip
    }


def _assessments() -> pa.Table:
    now = dt.datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        {"assessment_id": f"a{i}", "kind": "declaration", "record_id": f"d{i}", "subject_ref": f"D{i}/1",
         "office_code": office, "score": 90.0, "lane": "red", "risk_lane": "red", "sampled": False,
         "reasons": ["Item 1: heavy and cheap"], "rule_ids": ["R1"], "assessed_at": now}
        for i, office in enumerate(OFFICES)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=ASSESSMENTS_SCHEMA)


def build_derived_world(lake: Lake) -> Lake:
    for kind_name, rows in (
        ("watchlist_entry", [{"record_id": "w1", "list_id": "WL-1", "name": WATCHED_NAME,
                              "document_number": WATCHED_DOCUMENT, "reason": "courier for syndicate X",
                              "listed_on": dt.date(2025, 1, 1)}]),
        ("intelligence_report", [{"record_id": "r1", "report_id": "IR-1", "text": REPORT_TEXT,
                                  "received_at": dt.datetime(2026, 1, 1, tzinfo=UTC)}]),
        ("security_event", [
            {"record_id": "e1", "log": "auth", "event_id": "1", "user_name": "ann", "source_ip": "10.1.2.3",
             "action": "login", "outcome": "failure", "event_at": dt.datetime(2026, 1, 1, tzinfo=UTC)},
            {"record_id": "e2", "log": "firewall", "event_id": "2", "source_ip": "10.1.2.3",
             "destination_port": 22, "action": "DENY", "event_at": dt.datetime(2026, 1, 1, tzinfo=UTC)},
        ]),
    ):  # fmt: skip
        kind = get_kind(kind_name)
        lake.ensure_table(kind.ident, kind.arrow_schema())
        lake.append(kind.ident, _rows(kind_name, _fill(kind_name, rows)))
    tables = {ASSESSMENTS_TABLE: _assessments(), **_reference_tables()}
    for ident, table in tables.items():
        lake.ensure_table(ident, table.schema)
        lake.append(ident, table)
    return lake


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("derived") / "instance"
    home.mkdir()
    s = make_settings(home)
    return build_derived_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))


def rows_of(lake: Lake, who: Principal, sql: str, **kw) -> list[dict]:
    return open_query(lake, who, sql, **kw).reader.read_all().to_pylist()


OFFHK = principal("targeting_officer", office="HKIA", name="offhk")


# -- finding 1: office scope on risk.* -----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "offices"),
    [
        (OFFHK, {"HKIA": 2}),
        (principal("supervisor", office="KTCT"), {"KTCT": 1}),
        (principal("targeting_officer"), {"HKIA": 2, "KTCT": 1, "40": 1, None: 1}),  # no office: all
    ],
    ids=["offhk", "office-KTCT", "no-office"],
)
def test_risk_assessments_show_an_office_bound_account_its_office_only(world, who, offices) -> None:
    sql = "SELECT office_code, count(*) AS n FROM risk.assessments GROUP BY 1"
    assert {r["office_code"]: r["n"] for r in rows_of(world, who, sql)} == offices
    # Joins and subqueries see the filtered view only.
    sql = "SELECT count(*) AS n FROM risk.assessments a JOIN risk.assessments b USING (assessment_id)"
    assert rows_of(world, who, sql)[0]["n"] == sum(offices.values())


def test_web_pages_without_need_to_know_get_the_office_rule_too() -> None:
    """The dashboard reads risk.assessments with ``rule`` alone (need_to_know=False)."""
    assert DataPolicy(OFFHK).rule(ASSESSMENTS_TABLE).row_filter == "\"office_code\" = 'HKIA'"
    assert DataPolicy(principal("viewer")).rule(ASSESSMENTS_TABLE).row_filter is None
    assert DataPolicy(OFFHK).rule("risk.reference_history").row_filter == "false"
    assert DataPolicy(OFFHK).rule("std.watchlist_entries").row_filter == "false"  # no intel.read
    assert DataPolicy(principal("analyst")).rule("std.security_events").row_filter == "false"


@pytest.mark.parametrize(
    "table", ["risk.reference_history", "risk.reference_bands", "risk.reference_parties"]
)
def test_tables_of_every_office_are_not_for_office_bound_accounts(world, table) -> None:
    with pytest.raises(TableNotReadable, match="does not exist or"):
        open_query(world, OFFHK, f"SELECT * FROM {table}")
    assert rows_of(world, principal("targeting_officer"), f"SELECT * FROM {table}")
    # What tells nothing of any office's records stays readable.
    assert rows_of(world, OFFHK, "SELECT prior FROM risk.reference_meta") == [{"prior": 0.1}]


# -- finding 2: watch lists and intelligence ----------------------------------------------------


@pytest.mark.parametrize(
    ("role", "table", "readable"),
    [
        ("targeting_officer", "risk.reference_watchlist", False),
        ("targeting_officer", "std.watchlist_entries", False),
        ("targeting_officer", "std.intelligence_reports", False),
        ("targeting_officer", "ref.watchlist", False),
        ("viewer", "risk.reference_watchlist", False),
        ("data_engineer", "std.watchlist_entries", False),
        ("security_officer", "std.intelligence_reports", False),
        ("administrator", "std.watchlist_entries", False),
        ("analyst", "risk.reference_watchlist", True),
        ("analyst", "std.watchlist_entries", True),
        ("analyst", "ref.watchlist", True),
        ("supervisor", "std.intelligence_reports", True),
        ("analyst", "std.cases", True),
        ("targeting_officer", "std.cases", False),
    ],
)
def test_watch_lists_and_intelligence_need_intel_read(role, table, readable) -> None:
    assert DataPolicy(principal(role)).can_read(table) is readable


def test_the_officers_query_of_the_finding_is_refused(world) -> None:
    officer = principal("targeting_officer", name="officer")
    for table in ("risk.reference_watchlist", "std.watchlist_entries", "std.intelligence_reports"):
        with pytest.raises(TableNotReadable):
            open_query(world, officer, f"SELECT * FROM {table}")
    with pytest.raises(TableNotReadable):  # nor with unmask
        open_query(world, officer, "SELECT * FROM std.watchlist_entries", unmask=True, purpose="curious")


def test_the_derived_watch_list_is_masked_like_the_watch_list(world) -> None:
    analyst = principal("analyst")
    result = open_query(world, analyst, "SELECT value FROM risk.reference_watchlist ORDER BY 1")
    values = [r["value"] for r in result.reader.read_all().to_pylist()]
    assert all(re.fullmatch(r"pn:[0-9a-f]{12}", v) for v in values), values
    assert result.masked == {"risk.reference_watchlist": ["value"]}  # what the audit entry records
    source = rows_of(world, analyst, "SELECT name, document_number, reason FROM std.watchlist_entries")
    assert source[0]["name"] == "C*** S** M***" and source[0]["document_number"].startswith("pn:")
    assert source[0]["reason"] == "courier for syndicate X"  # restricted: analysts hold intel.read
    (ref,) = rows_of(world, analyst, "SELECT * FROM ref.watchlist")
    assert ref["name"] == "C*** S** M***" and ref["document_number"].startswith("pn:")
    assert ref["party_id"].startswith("pn:")
    # Matching within one query still works: the same value gives the same pseudonym.
    sql = (
        "SELECT count(*) AS n FROM risk.reference_watchlist r JOIN std.watchlist_entries w "
        "ON r.value = w.document_number"
    )
    assert rows_of(world, analyst, sql) == [{"n": 1}]


def test_unmasking_the_derived_watch_list_is_recorded_as_such(world) -> None:
    result = open_query(
        world, principal("analyst"), "SELECT value FROM risk.reference_watchlist ORDER BY 1",
        unmask=True, purpose="case 2026-9: confirm the listing",
    )  # fmt: skip
    assert [r["value"] for r in result.reader.read_all().to_pylist()] == [WATCHED_DOCUMENT, WATCHED_NAME]
    assert result.unmasked == {"risk.reference_watchlist": ["value"]} and result.masked == {}


def test_records_outside_sql_get_the_derived_masks() -> None:
    policy = DataPolicy(principal("analyst"))
    shown = policy.mask_record("risk.reference_watchlist", {"value": WATCHED_NAME, "snapshot_id": "s1"})
    assert shown["value"].startswith("pn:") and shown["snapshot_id"] == "s1"


# -- finding 3: security logs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "readable"),
    [
        ("analyst", False),
        ("targeting_officer", False),
        ("supervisor", False),
        ("data_engineer", False),
        ("administrator", False),
        ("viewer", False),
        ("security_officer", True),
    ],
)
def test_security_events_need_security_read(world, role, readable) -> None:
    sql = "SELECT log, count(*) AS n FROM std.security_events GROUP BY 1 ORDER BY 1"
    who = principal(role)
    assert DataPolicy(who).can_read("std.security_events") is readable
    if not readable:
        with pytest.raises(TableNotReadable):
            open_query(world, who, sql)
        return
    assert rows_of(world, who, sql) == [{"log": "auth", "n": 1}, {"log": "firewall", "n": 1}]
    (event,) = rows_of(world, who, "SELECT user_name, source_ip FROM std.security_events WHERE log = 'auth'")
    assert event["user_name"].startswith("pn:") and event["source_ip"].startswith("pn:")


def test_sec_zone_follows_the_same_permission() -> None:
    assert DataPolicy(principal("security_officer")).can_read("sec.alerts")
    assert not DataPolicy(principal("administrator")).can_read("sec.alerts")


# -- the policy covers every table SCITI writes --------------------------------------------------


def test_every_risk_table_sciti_writes_is_classified_in_the_policy() -> None:
    """A new risk.* table must say in policy.yaml what it holds (office rows, personal data, or
    nothing); one left out would be readable without any row rule or mask."""
    written = {ASSESSMENTS_TABLE, *(f"risk.reference_{name}" for name in REFERENCE_TABLES)}
    assert written - set(policy_config().derived) == set()


@pytest.mark.parametrize(
    "who",
    [principal("analyst"), OFFHK, principal("security_officer"), principal("supervisor", office="KTCT")],
    ids=["analyst", "offhk", "security", "office-KTCT"],
)
def test_every_readable_table_gets_a_valid_view(world, who) -> None:
    """The masks and row rules of kinds and derived tables are valid SQL on their tables."""
    policy = DataPolicy(who)
    idents = [*(k.ident for k in load_kinds().values()), ASSESSMENTS_TABLE, *_reference_tables()]
    readable = [t for t in idents if policy.can_read(t) and world.exists(t)]
    assert readable
    for ident in readable:
        open_query(world, who, f"SELECT * FROM {ident}").reader.read_all()


@pytest.mark.parametrize(
    "entry",
    [
        {"risk.x": {"office_colum": "office_code"}},  # a typo must not silently open a table
        {"risk.x": {"kind": "no_such_kind"}},
        {"risk.x": {"personal": {"value": "text"}}},
        {"RISK.X": {}},
        {"riskx": {}},
    ],
)
def test_a_wrong_derived_entry_fails_at_start_up(entry) -> None:
    from sciti.access.policy import _derived

    with pytest.raises(ValueError, match="policy.yaml"):
        _derived(entry, load_kinds())
