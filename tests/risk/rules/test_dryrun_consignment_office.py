"""A consignment rule scoped to offices dry-runs as batch scoring scores it (decisions 0108, 0113).

A consignment is handled at its manifest's ``customs_office``; the consignment record does not
carry it. Batch scoring joins the manifest by ``parent_record_id``; the dry-run must too, on its
lake path (canonical fields) and on its features path, and for an office-bound caller it counts
only that office's consignments, as their queue and SQL show them.

The data: the tiny demo world's CUSCAR manifests through the shipped connector (KTCT by sea, HKIA
by air) and a D.96B CUSCAR that names no office (its consignments are in no office's scope).
"""

from __future__ import annotations

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

    ran = dry_run(cargo, parse_rule(consignment_rule(f"T-CONS-KTCT-{n}", when, ["KTCT"])), 30)
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

    ktct = dry_run_as(cargo, person("targeting_officer", office="KTCT"), rule, 30)
    assert (ktct.path, ktct.office) == (path, "KTCT")
    assert ktct.records == ktct.in_scope == sum(1 for o in offices.values() if o == "KTCT")
    assert ktct.hits == len(scored) > 0 and set(ktct.sample_ids) <= set(scored)
    assert ktct.notes == []

    hkia = dry_run_as(cargo, person("targeting_officer", office="HKIA"), rule, 30)
    assert hkia.records == sum(1 for o in offices.values() if o == "HKIA") > 0
    assert (hkia.in_scope, hkia.hits, hkia.sample_ids) == (0, 0, [])
    (note,) = hkia.notes
    assert note.startswith("your account sees office HKIA only; the rule's scope names KTCT")

    # A scope of both offices, dry-run by an account of every office: both offices' hits.
    both = parse_rule(consignment_rule("T-CONS-BOTH", when, ["KTCT", "HKIA"]))
    every = dry_run_as(cargo, person("targeting_officer"), both, 30)
    assert every.in_scope == sum(1 for o in offices.values() if o is not None)
    assert len(scored) < every.hits < every.in_scope


def test_the_scope_is_written_as_for_other_kinds_and_refused_where_a_kind_has_none() -> None:
    rule = parse_rule(consignment_rule("T-CONS", HEAVY, [" KTCT "]))
    assert rule.scope == {"offices": ("KTCT",)}
    with pytest.raises(rules.RuleSyntaxError, match="consignment records carry no procedures"):
        parse_rule({**consignment_rule("T-CONS", HEAVY, ["KTCT"]), "scope": {"procedures": ["4000"]}})
