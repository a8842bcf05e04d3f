"""Inspection results that came with the data (KCS's own outcomes, through its connector) count in
the hit-rate report, each linked through its declaration to that record's latest assessment."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from sciti.lake import open_lake, query
from sciti.risk.engine import Assessor, hit_report, score_since
from tests.risk.engine.conftest import build_instance

WINDOW = {"since": date(2019, 1, 1), "until": date(2022, 1, 1)}  # KCS inspections: 2020-2021


@pytest.fixture(scope="module")
def scored(tmp_path_factory, shared_data):
    s = build_instance(tmp_path_factory.mktemp("report") / "instance", shared_data)
    score_since(s, "declaration", assessor=Assessor.load(s, kinds=("declaration",)))
    return s


def expected(settings) -> tuple[Counter, Counter, int]:
    """Per rule: inspected and frauds, and how many results link, worked out row by row here."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    latest: dict[str, tuple] = {}
    for a in query(
        lake, "SELECT record_id, assessed_at, assessment_id, rule_ids FROM risk.assessments"
    ).to_pylist():
        key = (a["assessed_at"], a["assessment_id"])
        if a["record_id"] not in latest or key > latest[a["record_id"]][0]:
            latest[a["record_id"]] = (key, a["rule_ids"] or [])
    records_of: dict[str, list[str]] = {}
    for d in query(lake, "SELECT record_id, declaration_id FROM std.declarations").to_pylist():
        records_of.setdefault(d["declaration_id"], []).append(d["record_id"])
    inspected, frauds, linked = Counter(), Counter(), 0
    results = query(
        lake, "SELECT declaration_id, inspected_on, fraud, selection_reason FROM std.inspection_results"
    )
    for r in results.to_pylist():
        if not WINDOW["since"] <= r["inspected_on"] < WINDOW["until"] or r["selection_reason"] == "random":
            continue
        found = [latest[rid] for rid in records_of.get(r["declaration_id"], []) if rid in latest]
        if not found:
            continue
        linked += 1
        for rule_id in max(found)[1]:
            inspected[rule_id] += 1
            frauds[rule_id] += bool(r["fraud"])
    return inspected, frauds, linked


def test_acquired_outcomes_count_per_rule(scored) -> None:
    report = hit_report(scored, **WINDOW, kind="declaration", min_inspected=1)
    inspected, frauds, linked = expected(scored)
    assert report["inspections"]["posted"] == 0 and report["inspections"]["acquired"] >= linked > 1000
    by_rule = {r["rule_id"]: r for r in report["rules"]}
    assert inspected and all(by_rule[rid]["inspected"] == n for rid, n in inspected.items())
    assert all(by_rule[rid]["frauds"] == n for rid, n in frauds.items())
    assert any(0 < r["frauds"] < r["inspected"] for r in report["rules"])  # real hit rates, not 0 or 1
    other_kind = hit_report(scored, **WINDOW, kind="passenger")
    assert other_kind["inspections"] == {"posted": 0, "acquired": 0}
