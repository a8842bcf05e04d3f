"""Dry-run over real lake data: the KCS declarations (valid.csv) through connectors/kcs.

The figures are checked against an independent count: the same rule's Python form over every
subject row read back from the lake, and the KCS fraud labels.
"""

from __future__ import annotations

import collections
from datetime import date

import pyarrow as pa
import pytest

from sciti.acquire import Runner, load_connector
from sciti.lake import open_lake, query
from sciti.ops import migrate
from sciti.risk.rules import compile_python, dry_run, parse_rule
from sciti.risk.rules.dryrun_notes import english
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def kcs_lake(tmp_path_factory, shared_data):
    home = tmp_path_factory.mktemp("dryrun") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    (result,) = Runner(s).ingest_path(load_connector(s, "kcs"), shared_data / "kcs" / "valid.csv")
    assert result.status == "committed"
    return s


def subject_rows(settings):
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    sql = """
        SELECT i.record_id, d.record_id AS declaration_record_id, d.acceptance_date, d.office_code,
               d.declaration_id, i.* EXCLUDE (record_id), r.fraud
        FROM std.declarations d
        JOIN std.declaration_items i
          ON i.declaration_id = d.declaration_id AND i.declaration_version = d.version
        LEFT JOIN std.inspection_results r ON r.target_id = d.declaration_id
    """
    return query(lake, sql).to_pylist()


RULE = {
    "id": "KCS-CN-HIGHDUTY",
    "title": "High duty rate on Chinese goods",
    "kind": "declaration",
    "when": "duty_rate > 8 and country_of_origin = 'CN' and net_mass_kg is not missing",
    "weight": 30,
    "reason": "Duty {duty_rate}% on goods of origin {country_of_origin}",
}


@pytest.mark.parametrize(
    ("days", "until", "scope"),
    [
        (400, None, None),
        (30, None, None),
        (10, date(2021, 2, 14), None),
        (400, None, {"offices": ["40", "20"]}),
    ],
)
def test_dry_run_figures_match_an_independent_count(kcs_lake, days, until, scope) -> None:
    rule = parse_rule({**RULE, **({"scope": scope} if scope else {})})
    result = dry_run(kcs_lake, rule, days, until=until)

    rows = subject_rows(kcs_lake)
    hi = until or max(r["acceptance_date"] for r in rows)
    lo = date.fromordinal(hi.toordinal() - days + 1)
    matches = compile_python(rule)
    window = [r for r in rows if lo <= r["acceptance_date"] <= hi]
    kept = [r for r in window if not scope or r["office_code"] in scope["offices"]]
    hits = [r for r in kept if matches(r)]
    assert (result.window_from, result.window_to) == (lo, hi)
    assert result.records == len(window)  # KCS: one item per declaration
    assert result.in_scope == len(kept) > 0 and result.scope_kept == ({"offices": len(kept)} if scope else {})
    assert result.notes == []
    assert result.hits == result.hit_subjects == result.hit_rows == len(hits) > 0
    assert result.inspected_hits == len(hits)  # every KCS declaration was inspected
    assert result.known_frauds == sum(1 for r in hits if r["fraud"])
    assert result.known_frauds > 0 or days < 30
    per_day = collections.Counter(r["acceptance_date"].isoformat() for r in hits)
    assert {d["day"]: d["hits"] for d in result.hits_per_day} == dict(per_day)
    # Samples are declarations' record ids (as risk.assessments and the queue name them), not items'.
    assert set(result.sample_ids) <= {r["declaration_record_id"] for r in hits}
    assert len(result.sample_ids) == min(20, len(hits))
    assert result.path == "lake"


def test_a_scope_that_keeps_nothing_and_a_validity_outside_the_window_are_said(kcs_lake) -> None:
    """The docs' example scope over the KCS data: every record is left out, and the result says so
    (which scope key kept how many), as it says that the rule is valid only in 2026."""
    scope = {"offices": ["KRINC", "KRPUS"], "procedures": ["4000"]}
    valid = {"valid_from": "2026-01-01", "valid_to": "2026-07-01"}
    result = dry_run(kcs_lake, parse_rule({**RULE, "scope": scope, **valid}), 400)
    window_rows = [r for r in subject_rows(kcs_lake) if result.window_from <= r["acceptance_date"]]
    procedures = sum(1 for r in window_rows if r["procedure_code"] == "4000")
    assert (result.records, result.in_scope, result.hits) == (len(window_rows), 0, 0)
    assert result.scope_kept == {"offices": 0, "procedures": procedures}
    assert (result.valid_from, result.valid_to) == ("2026-01-01", "2026-07-01")
    scope_note, validity_note = result.notes
    assert f"the scope kept none of the {len(window_rows):,} declarations in the window" in scope_note
    assert (
        "offices KRINC, KRPUS kept 0" in scope_note and f"procedures 4000 kept {procedures:,}" in scope_note
    )
    assert "valid from 2026-01-01 until 2026-07-01, outside the whole window" in validity_note
    # Each note's code and values, line for line, make its English again (decision 0118).
    parts = [{"key": "offices", "values": ["KRINC", "KRPUS"], "kept": 0},
             {"key": "procedures", "values": ["4000"], "kept": procedures}]  # fmt: skip
    window = {"window_from": result.window_from.isoformat(), "window_to": result.window_to.isoformat()}
    assert result.note_codes == [
        {
            "code": "scope_kept_none",
            "params": {"parts": parts, "records": len(window_rows), "kind": "declaration"},
        },
        {"code": "valid_outside", "params": {"valid_from": "2026-01-01", "valid_to": "2026-07-01", **window}},
    ]
    assert [english(c["code"], c["params"]) for c in result.note_codes] == result.notes
    assert result.to_dict()["note_codes"] == result.note_codes  # kept with the figures, given by the API


@pytest.mark.parametrize(
    ("valid", "note"),
    [
        ({"valid_from": "2026-01-01"}, "valid from 2026-01-01, outside the whole window"),
        ({"valid_to": "2019-01-01T06:00:00Z"}, "valid until 2019-01-01T06:00:00Z, outside the whole window"),
        ({"valid_from": "2021-02-01"}, "valid from 2021-02-01, only part of the window"),
        ({"valid_from": "2019-01-01", "valid_to": "2030-01-01"}, None),
    ],
)
def test_validity_does_not_limit_the_window_but_is_said(kcs_lake, valid, note) -> None:
    """A rule is valid over assessment times; the dry-run shows what it selects in the window."""
    plain = dry_run(kcs_lake, parse_rule(RULE), 400)
    result = dry_run(kcs_lake, parse_rule({**RULE, **valid}), 400)
    assert (result.records, result.hits, result.known_frauds) == (
        plain.records,
        plain.hits,
        plain.known_frauds,
    )
    assert plain.hits > 0 and result.in_scope == result.records
    assert [n for n in result.notes if note and note in n] == ([] if note is None else result.notes)
    assert len(result.notes) == (0 if note is None else 1)
    codes = [c["code"] for c in result.note_codes]
    assert codes == ([] if note is None else ["valid_part" if "only part" in note else "valid_outside"])
    assert [english(c["code"], c["params"]) for c in result.note_codes] == result.notes


def test_dry_run_on_an_empty_lake_says_nothing_was_hit(settings) -> None:
    result = dry_run(settings, parse_rule(RULE), 30)
    assert (result.records, result.hits, result.known_frauds, result.window_to) == (0, 0, 0, None)


def test_a_rule_on_derived_features_runs_over_the_engines_features(kcs_lake) -> None:
    from sciti.risk import features

    rule = parse_rule({**RULE, "when": "unit_value_ratio < 30% and hs_chapter != '27'"})
    result = dry_run(kcs_lake, rule, 60)
    assert result.path == "features"

    table = features.compute_batch(
        "declaration",
        features.lake_records(kcs_lake, "declaration", labels=True),
        features.build_reference(kcs_lake),
    )
    rows = table.to_pylist()
    hi = max(r["record_date"] for r in rows)
    lo = date.fromordinal(hi.toordinal() - 59)
    matches = compile_python(rule)
    hits = [r for r in rows if lo <= r["record_date"] <= hi and matches(r)]
    assert result.hit_subjects == len({r["declaration_id"] for r in hits}) > 0
    assert result.known_frauds == len({r["declaration_id"] for r in hits if r["fraud"]})
    assert result.window_to == hi

    # The same over the features, with a scope: the records it keeps are counted there too.
    offices = sorted({r["office_code"] for r in rows if r["office_code"]})[:2]
    scoped = dry_run(kcs_lake, parse_rule({**rule.to_dict(), "scope": {"offices": offices}}), 60)
    window = {r["declaration_id"] for r in rows if lo <= r["record_date"] <= hi}
    kept = {r["declaration_id"] for r in rows if lo <= r["record_date"] <= hi and r["office_code"] in offices}
    assert (scoped.path, scoped.records, scoped.in_scope) == ("features", len(window), len(kept))
    assert 0 < len(kept) < len(window) and scoped.scope_kept == {"offices": len(kept)}


def test_starter_cash_rule_over_the_demo_worlds_currency_records(tiny_world, settings) -> None:
    """Another kind (timestamps, no items) through the canonical path: the figures match the CSV."""
    import csv

    from sciti.risk.rules import starter_rule_texts

    migrate(settings.resolved_ops_db_url)
    (result,) = Runner(settings).ingest_path(
        load_connector(settings, "demo-currency"), tiny_world.out / "currency"
    )
    assert result.status == "committed" and result.quarantined == 0
    rule = parse_rule(starter_rule_texts()["cash-large-check.yaml"])
    ran = dry_run(settings, rule, 3660)
    assert ran.path == "lake"

    with (tiny_world.out / "currency" / "cbni.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    matches = compile_python(rule)
    expected = [r for r in rows if matches({**r, "amount_national": float(r["amount_national"] or "nan")})]
    assert ran.records == len(rows)
    assert ran.hits == ran.hit_subjects == len(expected) > 0
    assert ran.window_to == max(date.fromisoformat(r["declared_at"][:10]) for r in rows)


KIND_CASES = [
    # kind, a text field to test, the date fields that make the record's day
    ("consignment", "consignee_country", {}),
    ("road_cargo_info", "vehicle_nationality", {"submitted_at": "ts"}),
    ("passenger", "nationality", {"departure_date": "date"}),
    ("currency_declaration", "nationality", {"declared_at": "ts"}),
]


@pytest.mark.parametrize(("kind", "field", "dates"), KIND_CASES)
def test_every_subject_kind_dry_runs_over_its_own_table(settings, kind, field, dates) -> None:
    from datetime import UTC, datetime

    from sciti.model import get_kind
    from sciti.risk.rules.dryrun import SUBJECT_SQL

    k = get_kind(kind)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_zones()
    lake.ensure_table(k.ident, k.arrow_schema())
    rows = []
    for n, value in enumerate(["XX", "XX", "YY", None]):
        row = {f.name: None for f in k.arrow_schema()}
        row.update(record_id=f"r{n}", source="t", batch_id="b", ingested_at=datetime(2026, 1, 10, tzinfo=UTC))
        row[field] = value
        row[SUBJECT_SQL[kind].key_column] = f"K{n}"  # each record its own subject
        for name, shape in dates.items():
            row[name] = datetime(2026, 1, 1 + n, 8, tzinfo=UTC) if shape == "ts" else date(2026, 1, 1 + n)
        rows.append(row)
    lake.append(k.ident, pa.Table.from_pylist(rows, schema=k.arrow_schema()))
    rule = parse_rule({**RULE, "kind": kind, "when": f"{field} = 'XX'", "reason": f"{{{field}}}"})
    result = dry_run(settings, rule, 30)
    assert (result.records, result.hits, result.hit_subjects) == (4, 2, 2)
    assert result.window_to == (date(2026, 1, 4) if dates else date(2026, 1, 10))
    assert sorted(result.sample_ids) == ["r0", "r1"]


def test_history_features_are_taken_as_of_each_records_date_not_today(kcs_lake) -> None:
    """KCS is of 2020-21: counted from today a trader has no declarations in the last 365 days and
    nobody is first-time. As of each record's date (as training computes them) both are real."""
    from sciti.risk import features
    from sciti.risk.rules.dryrun import history_features, names_history

    assert {"trader_first_time", "trader_declarations_365d", "hs_risk"} <= history_features("declaration")
    assert {"person_movements_90d"} <= history_features("currency_declaration")
    first = parse_rule({**RULE, "when": "trader_first_time"})
    assert names_history(first) == ["trader_first_time"]
    ran = dry_run(kcs_lake, first, 3660)
    assert (ran.path, ran.history_as_of) == ("features", "record_date")

    rows = features.lake_records(kcs_lake, "declaration", labels=True)
    hi = max(rows["record_date"].to_pylist())
    expected = features.compute_batch(
        "declaration", rows, features.build_reference(kcs_lake, as_of=hi), point_in_time=True
    ).to_pylist()
    firsts = {r["declaration_id"] for r in expected if r["trader_first_time"]}
    assert ran.hits == ran.hit_subjects == len(firsts) > 0
    assert ran.records == len({r["declaration_id"] for r in expected})

    # Declarations 365 days back from each record's own date: not 0 for every trader.
    none_before = dry_run(kcs_lake, parse_rule({**RULE, "when": "trader_declarations_365d = 0"}), 3660)
    assert none_before.hits == len(
        {r["declaration_id"] for r in expected if not r["trader_declarations_365d"]}
    )
    assert 0 < none_before.hits < none_before.records

    # A rule without history features keeps the reference as it is (no point-in-time pass).
    plain = dry_run(kcs_lake, parse_rule({**RULE, "when": "unit_value_ratio < 30%"}), 3660)
    assert (plain.path, plain.history_as_of) == ("features", None)


def test_declaration_figures_count_declarations_and_name_goods_items_beside(settings) -> None:
    """Two declarations of three goods items each, two items of the first hit and one of the second:
    2 declarations hit (3 goods items); samples are the declarations' record ids."""
    from tests.risk.rules.test_dryrun_access import write_rows

    migrate(settings.resolved_ops_db_url)
    heads = [
        {"record_id": f"d{n}", "declaration_id": f"DEC{n}", "version": 1, "office_code": "A",
         "acceptance_date": date(2026, 1, 1 + n), "importer_id": "IMP1"}
        for n in range(3)
    ]  # fmt: skip
    origins = {0: ["CN", "CN", "DE"], 1: ["CN", "DE", "DE"], 2: ["DE", "DE", "DE"]}
    items = [
        {"record_id": f"d{n}-i{k}", "parent_record_id": f"d{n}", "declaration_id": f"DEC{n}",
         "declaration_version": 1, "item_number": k + 1, "country_of_origin": origin,
         "hs_code": "851712", "net_mass_kg": 10.0, "item_price": 100}
        for n, row in origins.items() for k, origin in enumerate(row)
    ]  # fmt: skip
    write_rows(settings, "declaration", heads)
    write_rows(settings, "declaration_item", items)
    for when, path in (
        ("country_of_origin = 'CN'", "lake"),
        ("country_of_origin = 'CN' and not aeo", "features"),
    ):
        ran = dry_run(settings, parse_rule({**RULE, "when": when}), 30)
        assert ran.path == path
        assert (ran.records, ran.hits, ran.hit_rows, ran.hit_subjects) == (3, 2, 3, 2), path
        assert sorted(ran.sample_ids) == ["d0", "d1"], path
        assert [(d["hits"], d["hit_rows"]) for d in ran.hits_per_day] == [(1, 2), (1, 1)], path
        assert ran.summary() == "2 declarations hit (3 goods items) of 3 in the window"
        assert ran.to_dict()["hit_rows"] == 3


def test_the_first_time_starter_rule_hits_few_declarations_and_many_frauds(kcs_lake) -> None:
    """DECL-FIRSTTIME-HS-01 as shipped, over KCS 2021 Q1 (every declaration inspected): a share of
    the declarations an analyst can review, and frauds among its hits well above the overall rate.
    At hs_risk >= 0.25 it hit 6.7% of them with frauds in 39% (decision 0106)."""
    from sciti.risk.rules import starter_rule_texts

    rule = parse_rule(starter_rule_texts()["decl-first-time-high-risk-hs.yaml"])
    ran = dry_run(kcs_lake, rule, 3660)
    rows = subject_rows(kcs_lake)
    base = sum(1 for r in rows if r["fraud"]) / len(rows)
    assert (ran.records, ran.history_as_of) == (len(rows), "record_date")
    assert 0 < ran.hits <= 0.02 * ran.records, ran.summary()
    assert ran.inspected_hits == ran.hits and ran.hit_rate is not None
    assert ran.hit_rate >= 2 * base, (ran.hit_rate, base)
