"""Every kind's record is dated once: the lake row (windows, training splits), its scored
``record_date`` and the dry-run's lake path give the same day (decision 0116).

A consignment is dated by its manifest's arrival, else departure, else issue. Road cargo and cash
declarations carry a person's date of birth, which is never the record's date.
"""

from __future__ import annotations

from datetime import date

import pytest

from sciti.acquire import Runner, load_connector
from sciti.demo import generate
from sciti.demo.load import load_world
from sciti.lake import open_lake, query
from sciti.risk import features
from sciti.risk.rules.dryrun_subjects import subject_source
from sciti.settings import Settings
from tests.conftest import make_settings

KINDS = ("consignment", "road_cargo_info", "passenger", "currency_declaration")
FEEDS = ["edifact-cuscar", "demo-road-cargo", "demo-passengers", "demo-currency"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("record_dates")
    world = generate(root / "world", "tiny", 11)
    (root / "instance").mkdir()
    settings = make_settings(root / "instance")
    report = load_world(settings, world.out, feeds=FEEDS, reference=False)
    assert not report.failed, report.failed
    return settings


@pytest.mark.parametrize("kind", KINDS)
def test_the_lake_row_the_scored_row_and_the_dry_run_date_a_record_alike(lake, kind) -> None:
    rows = features.lake_records(lake, kind)
    assert rows.num_rows > 0
    scored = features.compute_batch(kind, rows, features.build_reference(lake))
    assert scored["record_date"].to_pylist() == rows["record_date"].to_pylist()
    assert rows["record_date"].null_count == 0

    store = open_lake(lake.resolved_catalog_uri, lake.resolved_warehouse)
    source = subject_source(kind, set(), store, None)
    sql = f"SELECT t.record_id, {source.date_sql} AS day FROM {source.from_sql}"  # noqa: S608 (our SQL)
    dry_run_days = {r["record_id"]: r["day"] for r in query(store, sql).to_pylist()}
    assert dry_run_days == dict(
        zip(rows["record_id"].to_pylist(), rows["record_date"].to_pylist(), strict=True)
    )


CASH_CONNECTOR = """
name: cash-with-birth
source: cash-desk
description: Cash declarations that give the carrier's date of birth
format: csv
files: "cash.csv"
options: {encoding: utf-8, delimiter: ","}
outputs:
  - kind: currency_declaration
    fields:
      {declaration_number: number, declared_at: declared_at, date_of_birth: born, amount_national: amount}
secrets: {}
"""


def test_a_person_s_date_of_birth_never_dates_the_record(lake, tmp_path) -> None:
    """A cash declaration is dated when it is declared; its kind's first date field is the
    carrier's date of birth, which once dated its lake row (and so the dry-run's window)."""
    (tmp_path / "cash-with-birth").mkdir()
    (tmp_path / "cash-with-birth" / "connector.yaml").write_text(CASH_CONNECTOR, encoding="utf-8")
    data = tmp_path / "cash.csv"
    data.write_text(
        "number,declared_at,born,amount\nCB-BORN-1,2026-11-02T10:00:00Z,1980-05-17,130000\n", encoding="utf-8"
    )
    cash = make_settings(lake.home, connectors_dir=tmp_path)
    (result,) = Runner(cash).ingest_path(load_connector(cash, "cash-with-birth"), data)
    assert result.status == "committed", result
    (row,) = [
        r for r in features.lake_records(lake, "currency_declaration").to_pylist() if r["date_of_birth"]
    ]
    assert (row["date_of_birth"], row["record_date"]) == (date(1980, 5, 17), date(2026, 11, 2))


def test_a_consignment_is_dated_by_its_manifest(lake) -> None:
    store = open_lake(lake.resolved_catalog_uri, lake.resolved_warehouse)
    manifest_days = {
        r["record_id"]: r["day"]
        for r in query(
            store,
            "SELECT c.record_id, CAST(COALESCE(m.arrival_datetime, m.departure_datetime, "
            "m.issue_datetime) AS DATE) AS day FROM std.consignments c "
            "JOIN std.manifests m ON m.record_id = c.parent_record_id",
        ).to_pylist()
    }
    rows = features.lake_records(lake, "consignment").to_pylist()
    assert len({r["record_date"] for r in rows}) > 1  # over the demo's weeks, not the day it was loaded
    assert {r["record_id"]: r["record_date"] for r in rows} == manifest_days
