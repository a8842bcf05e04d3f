"""Retention on a real lake: old rows are gone from the current table AND from time travel, the files
that held them are deleted, and the audit trail holds the proof."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse

import pyarrow as pa
import pytest

from sciti.access import list_entries
from sciti.access.privacy import PrivacyError, retention_rules, run_retention, set_retention, unset_retention
from sciti.lake import open_lake
from sciti.model import get_kind
from sciti.ops import migrate, session_scope

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TABLE = "std.passengers"


def _rows(prefix: str, departure: date, n: int) -> pa.Table:
    schema = get_kind("passenger").arrow_schema()
    rows = [
        {
            "record_id": f"{prefix}-{i}",
            "source": "test",
            "batch_id": prefix,
            "locator": f"row {i}",
            "ingested_at": NOW,
            "record_ref": f"{prefix}-{i}",
            "voyage_id": "KE123",
            "departure_date": departure,
            "surname": f"PERSON{i}",
            "document_number": f"M{prefix}{i:05d}",
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _files(table) -> set[str]:
    return {urlparse(t.file.file_path).path for t in table.scan().plan_files()}


def _world(s):
    migrate(s.resolved_ops_db_url)
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    lake.ensure_table(TABLE, get_kind("passenger").arrow_schema())
    lake.append(TABLE, _rows("old", date(2019, 5, 1), 30))  # older than 5 years at NOW
    lake.append(TABLE, _rows("mixed", date(2021, 12, 1), 10))  # 2021-12-01 is within 5 years
    lake.append(TABLE, _rows("new", date(2026, 10, 1), 20))
    return s, lake


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request):
    """A passenger table with three commits, on an SQLite and on a PostgreSQL catalog."""
    return _world(request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings"))


@pytest.fixture
def sqlite_world(settings):
    return _world(settings)


def test_old_rows_are_gone_now_and_from_time_travel(world):
    settings, lake = world
    table = lake.table(TABLE)
    old_snapshot = table.metadata.current_snapshot_id
    old_files = _files(table)
    assert all(os.path.exists(p) for p in old_files)

    (result,) = run_retention(settings, lake, actor="dpo", kinds=["passenger"], now=NOW)
    assert (result.rows_deleted, result.cutoff) == (30, "2021-11-02")
    assert old_snapshot in result.expired_snapshots and result.snapshots_left == 1

    table = lake.table(TABLE)
    current = table.scan().to_arrow()
    assert current.num_rows == 30
    assert min(current["departure_date"].to_pylist()) == date(2021, 12, 1)
    # Time travel: the snapshots that held the rows are expired, and their files are deleted.
    assert table.snapshot_by_id(old_snapshot) is None
    assert lake.snapshot_at(TABLE, NOW - timedelta(days=3650)) is None
    gone = old_files - _files(table)
    assert gone and not any(os.path.exists(p) for p in gone)
    assert result.files_removed >= len(gone)

    with session_scope(settings.resolved_ops_db_url) as s:
        (proof,) = list_entries(s, action="retention.run")
    assert (proof.actor, proof.target, proof.outcome) == ("dpo", f"table:{TABLE}", "ok")
    assert proof.details["rows_deleted"] == 30 and proof.details["cutoff"] == "2021-11-02"
    assert proof.details["delete_snapshot"] == table.metadata.current_snapshot_id
    assert old_snapshot in proof.details["expired_snapshots"]

    again = run_retention(settings, lake, kinds=["passenger"], now=NOW)
    assert again[0].rows_deleted == 0


def test_an_override_shortens_the_period(sqlite_world):
    settings, lake = sqlite_world
    with session_scope(settings.resolved_ops_db_url) as s:
        set_retention(s, "passenger", 365, actor="dpo", reason="national law: one year")
        rule = {r.kind: r for r in retention_rules(settings, s)}["passenger"]
    assert (rule.days, rule.origin, rule.date_field) == (365, "override", "departure_date")
    (result,) = run_retention(settings, lake, kinds=["passenger"], now=NOW)
    assert result.rows_deleted == 40
    assert lake.table(TABLE).scan().to_arrow().num_rows == 20
    with session_scope(settings.resolved_ops_db_url) as s:
        unset_retention(s, "passenger", actor="dpo")
        assert {r.kind: r for r in retention_rules(settings, s)}["passenger"].days == 1825


def test_no_table_yet_is_nothing_to_do(settings):
    migrate(settings.resolved_ops_db_url)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    results = run_retention(settings, lake, now=NOW)
    assert {r.kind for r in results} >= {"passenger", "currency_declaration"}
    assert all(r.rows_deleted == 0 for r in results)


@pytest.mark.parametrize(
    ("kind", "days", "field", "message"),
    [
        ("nokind", 10, None, "unknown record kind"),
        ("passenger", 0, None, "whole number of days"),
        ("passenger", 10, "surname", "not a date or timestamp field"),
    ],
)
def test_bad_overrides_are_refused(settings, kind, days, field, message):
    with session_scope(settings.resolved_ops_db_url) as s, pytest.raises(PrivacyError, match=message):
        set_retention(s, kind, days, actor="dpo", date_field=field)


def test_a_timestamp_field_counts_too(sqlite_world):
    settings, lake = sqlite_world
    with session_scope(settings.resolved_ops_db_url) as s:
        set_retention(s, "passenger", 30, actor="dpo", date_field="ingested_at")
    (kept,) = run_retention(settings, lake, kinds=["passenger"], now=NOW + timedelta(days=29))
    assert kept.rows_deleted == 0
    (result,) = run_retention(settings, lake, kinds=["passenger"], now=NOW + timedelta(days=31))
    assert result.rows_deleted == 60 and result.cutoff.startswith("2026-11-02T")
    assert lake.table(TABLE).scan().to_arrow().num_rows == 0


def test_the_server_schedule_runs_retention_and_stops(sqlite_world):
    import time

    from sciti.access.privacy import RetentionSchedule
    from tests.conftest import make_settings

    settings, lake = sqlite_world
    fast = make_settings(settings.home, retention_every_hours=0.0001)
    schedule = RetentionSchedule(fast, lake, first_delay=0)
    schedule.start()
    try:
        deadline = time.monotonic() + 30
        while schedule.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        schedule.stop()
    assert schedule.runs >= 2 and not schedule.is_alive()
    left = lake.table(TABLE).scan().to_arrow()["departure_date"].to_pylist()
    assert left and min(left) > date(2020, 1, 1)  # the 2019 rows were due under today's 5-year rule
    with session_scope(settings.resolved_ops_db_url) as s:
        assert {e.actor for e in list_entries(s, action="retention.run")} == {"retention-schedule"}
