"""A consignment rule scoped to offices dry-runs as batch scoring scores it (decisions 0108, 0113).

A consignment is handled at its manifest's ``customs_office``; the consignment record does not
carry it. Batch scoring joins the manifest by ``parent_record_id``; the dry-run must too, on its
lake path (canonical fields) and on its features path, and for an office-bound caller it counts
only that office's consignments, as their queue and SQL show them.

The data: the tiny demo world's CUSCAR manifests through the shipped connector (KTCT by sea, HKIA
by air) and a D.96B CUSCAR that names no office (its consignments are in no office's scope).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sciti.access import create_user
from sciti.acquire import Runner, load_connector
from sciti.demo import load_world
from sciti.lake import open_lake, query
from sciti.ops import migrate, session_scope
from sciti.risk import features, rules
from sciti.risk.engine import Assessor
from sciti.risk.rules import dry_run, dry_run_as, parse_rule
from tests.conftest import make_settings
from tests.risk.engine.conftest import approve
from tests.risk.rules.test_dryrun_access import person

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edifact"
HEAVY = "gross_mass_kg > 1000"  # canonical fields only: the lake path
HEAVY_CODED = "gross_mass_kg > 1000 and hs_chapter is not missing"  # a derived feature: the features path
PATHS = [(HEAVY, "lake"), (HEAVY_CODED, "features")]
# Consignments are dated by their manifests' arrival (decision 0116), over the demo's months: a
# window of ten years holds every one.
DAYS = 3660


def consignment_rule(rule_id: str, when: str, offices: list[str]) -> dict:
    return {
        "id": rule_id,
        "title": "Heavy consignments at an office",
        "kind": "consignment",
        "when": when,
        "scope": {"offices": offices},
        "weight": 40,
        "reason": "{gross_mass_kg} kg",
    }


@pytest.fixture(scope="module")
def cargo(tmp_path_factory, tiny_world):
    home = tmp_path_factory.mktemp("consignment_office") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    load_world(s, tiny_world.out, feeds=["edifact-cuscar"], reference=False)
    (result,) = Runner(s).ingest_path(load_connector(s, "edifact-cuscar"), FIXTURES / "cuscar_d96b.edi")
    assert result.status == "committed"
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "alice", ["analyst"], service=True)
        create_user(session, "bob", ["supervisor"], service=True)
    rules.clear_cache()
    for n, (when, _) in enumerate(PATHS):
        approve(s, consignment_rule(f"T-CONS-KTCT-{n}", when, ["KTCT"]))
    features.save_reference(s, features.build_reference(s))
    return s


def batch_hits(settings, rule_id: str) -> dict[str, str | None]:
    """Record id -> office of the consignments batch scoring hit with ``rule_id``."""
    assessor = Assessor.load(settings, kinds=("consignment",))
    rows = assessor.assess_batch("consignment", features.lake_records(settings, "consignment")).to_pylist()
    return {r["record_id"]: r["office_code"] for r in rows if rule_id in (r["rule_ids"] or [])}


def offices_of(settings) -> dict[str, str | None]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    sql = (
        "SELECT c.record_id, m.customs_office FROM std.consignments c "
        "LEFT JOIN std.manifests m ON m.record_id = c.parent_record_id"
    )
    return {r["record_id"]: r["customs_office"] for r in query(lake, sql).to_pylist()}


@pytest.mark.parametrize(("n", "when", "path"), [(n, w, p) for n, (w, p) in enumerate(PATHS)])
def test_a_dry_run_hits_the_consignments_batch_scoring_hits(cargo, n, when, path) -> None:
    offices = offices_of(cargo)
    assert set(offices.values()) == {"KTCT", "HKIA", None}  # sea, air, and a report naming none
    scored = batch_hits(cargo, f"T-CONS-KTCT-{n}")
    assert scored and set(scored.values()) == {"KTCT"}

    ran = dry_run(cargo, parse_rule(consignment_rule(f"T-CONS-KTCT-{n}", when, ["KTCT"])), DAYS)
    assert ran.path == path
    assert ran.records == len(offices)
    assert ran.in_scope == ran.scope_kept["offices"] == sum(1 for o in offices.values() if o == "KTCT")
    assert ran.hits == ran.hit_subjects == len(scored)
    assert set(ran.sample_ids) <= set(scored) and len(ran.sample_ids) == min(20, len(scored))
    assert ran.notes == []


@pytest.mark.parametrize(("n", "when", "path"), [(n, w, p) for n, (w, p) in enumerate(PATHS)])
def test_an_office_bound_callers_dry_run_counts_their_consignments_only(cargo, n, when, path) -> None:
    """An officer of KTCT counts KTCT's consignments, as their queue and SQL show them; one of
    HKIA is told that their binding, not the scope, hides what the rule hits."""
    offices = offices_of(cargo)
    scored = batch_hits(cargo, f"T-CONS-KTCT-{n}")
    rule = parse_rule(consignment_rule(f"T-CONS-KTCT-{n}", when, ["KTCT"]))

    ktct = dry_run_as(cargo, person("targeting_officer", office="KTCT"), rule, DAYS)
    assert (ktct.path, ktct.office) == (path, "KTCT")
    assert ktct.records == ktct.in_scope == sum(1 for o in offices.values() if o == "KTCT")
    assert ktct.hits == len(scored) > 0 and set(ktct.sample_ids) <= set(scored)
    assert ktct.notes == []

    hkia = dry_run_as(cargo, person("targeting_officer", office="HKIA"), rule, DAYS)
    assert hkia.records == sum(1 for o in offices.values() if o == "HKIA") > 0
    assert (hkia.in_scope, hkia.hits, hkia.sample_ids) == (0, 0, [])
    (note,) = hkia.notes
    assert note.startswith("your account sees office HKIA only; the rule's scope names KTCT")

    # A scope of both offices, dry-run by an account of every office: both offices' hits.
    both = parse_rule(consignment_rule("T-CONS-BOTH", when, ["KTCT", "HKIA"]))
    every = dry_run_as(cargo, person("targeting_officer"), both, DAYS)
    assert every.in_scope == sum(1 for o in offices.values() if o is not None)
    assert len(scored) < every.hits < every.in_scope


def manifest_fields(settings) -> dict[str, dict]:
    """Consignment record id -> its manifest's mode of transport and office, and the day it is
    dated by: arrival, else departure, else issue (UTC), else the day SCITI stored it (0116)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    sql = (
        "SELECT c.record_id, m.mode_of_transport, m.customs_office, CAST(COALESCE(m.arrival_datetime, "
        "m.departure_datetime, m.issue_datetime, c.ingested_at) AS DATE) AS day FROM std.consignments c "
        "LEFT JOIN std.manifests m ON m.record_id = c.parent_record_id"
    )
    return {r["record_id"]: r for r in query(lake, sql).to_pylist()}


@pytest.mark.parametrize(("n", "when", "path"), [(n, w, p) for n, (w, p) in enumerate(PATHS)])
def test_a_rule_scoped_to_a_mode_of_transport_dry_runs_as_batch_scoring_hits(cargo, n, when, path) -> None:
    """``modes_of_transport`` reads the manifest's mode (decision 0116), as batch scoring does."""
    fields = manifest_fields(cargo)
    assert {f["mode_of_transport"] for f in fields.values()} >= {"1", "4"}  # sea and air
    rule = consignment_rule(f"T-CONS-SEA-{n}", when, ["KTCT"]) | {"scope": {"modes_of_transport": ["1"]}}
    approve(cargo, rule)
    scored = batch_hits(cargo, rule["id"])
    assert scored and {fields[r]["mode_of_transport"] for r in scored} == {"1"}

    ran = dry_run(cargo, parse_rule(rule), DAYS)
    assert ran.path == path
    assert ran.in_scope == sum(1 for f in fields.values() if f["mode_of_transport"] == "1") < ran.records
    assert ran.hits == len(scored) and set(ran.sample_ids) <= set(scored)


@pytest.mark.parametrize(("n", "when", "path"), [(n, w, p) for n, (w, p) in enumerate(PATHS)])
def test_a_condition_naming_the_manifests_fields_dry_runs_as_batch_scoring_hits(cargo, n, when, path) -> None:
    fields = manifest_fields(cargo)
    named = (
        f"{when} and customs_office = 'HKIA' and mode_of_transport = '4' and arrival_location is not missing"
    )
    rule = consignment_rule(f"T-CONS-AIR-{n}", named, ["KTCT"])
    del rule["scope"]
    approve(cargo, rule)
    scored = batch_hits(cargo, rule["id"])
    assert scored and {(fields[r]["customs_office"], fields[r]["mode_of_transport"]) for r in scored} == {
        ("HKIA", "4")
    }
    ran = dry_run(cargo, parse_rule(rule), DAYS)
    assert (ran.path, ran.hits) == (path, len(scored)) and set(ran.sample_ids) <= set(scored)


@pytest.mark.parametrize(("when", "path"), PATHS)
def test_the_window_holds_the_consignments_dated_in_it_by_their_manifests(cargo, when, path) -> None:
    """The last 7 days are those of the manifests' arrivals, not of the day the data was loaded."""
    days = sorted(f["day"] for f in manifest_fields(cargo).values())
    newest = days[-1]
    in_window = [d for d in days if d > newest - timedelta(days=7)]
    assert 0 < len(in_window) < len(days)  # the demo's cargo arrives over weeks
    ran = dry_run(cargo, parse_rule(consignment_rule("T-CONS-WEEK", when, ["KTCT", "HKIA"])), 7)
    assert (ran.path, ran.window_to, ran.records) == (path, newest, len(in_window))


def test_the_scope_is_written_as_for_other_kinds_and_refused_where_a_kind_has_none() -> None:
    rule = parse_rule(consignment_rule("T-CONS", HEAVY, [" KTCT "]))
    assert rule.scope == {"offices": ("KTCT",)}
    with pytest.raises(rules.RuleSyntaxError, match="consignment records carry no procedures"):
        parse_rule({**consignment_rule("T-CONS", HEAVY, ["KTCT"]), "scope": {"procedures": ["4000"]}})
