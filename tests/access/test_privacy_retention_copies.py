"""Retention takes every copy: received files in the object store, their quarantine entries, risk
assessments, the officers' queue, reference tables. Real runner, real lake, real object store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select

from sciti.access import list_entries
from sciti.access.privacy import personal_kinds, record_copies, retention_rules, run_retention
from sciti.acquire import Runner, load_connector
from sciti.lake import ObjectStore, open_lake
from sciti.model import get_kind, load_kinds
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope
from sciti.ops.risk_tables import RiskInspection, RiskOverride, RiskQueueItem
from sciti.risk.engine import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE

NOW = datetime(2026, 11, 1, tzinfo=UTC)  # the passenger cutoff (5 years) is 2021-11-02
OLD, NEW = "2019-05-01", "2026-10-01"


def _passenger(ref: str, departure: str, document: str, surname: str = "ZHENG") -> dict:
    return {
        "record_ref": ref,
        "data_type": "API",
        "voyage_id": f"SZB/{departure}",
        "departure_date": departure,
        "departure_port": "HKHKG",
        "arrival_port": "SGSIN",
        "control_point": "SZB",
        "surname": surname,
        "given_names": "DAZHI",
        "date_of_birth": "1959-12-28",
        "nationality": "CN",
        "document_type": "P",
        "document_number": document,
    }


def _jsonl(folder: Path, rows: list[dict], bad: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in rows] + ([bad] if bad else [])
    path = folder / "api_records.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _ingest(settings, path: Path):
    (result,) = Runner(settings).ingest_path(load_connector(settings, "demo-passengers"), path)
    assert result.status == "committed", result.error
    with session_scope(settings.resolved_ops_db_url) as s:
        key = s.get(Batch, result.batch_id).object_key
    return result, key


def _ids(lake) -> dict[str, str]:
    rows = lake.table("std.passengers").scan(selected_fields=("record_ref", "record_id")).to_arrow()
    return dict(zip(rows["record_ref"].to_pylist(), rows["record_id"].to_pylist(), strict=True))


def _assessment(n: int, record_id: str, at: datetime) -> dict:
    return {
        "assessment_id": f"a{n}",
        "kind": "passenger",
        "record_id": record_id,
        "subject_ref": f"API{n}",
        "score": 80.0,
        "lane": "red",
        "assessed_at": at,
        "factors": '[{"feature": "document_number", "value": "H87857782"}]',
    }


def _in_any_snapshot(lake, ident: str, column: str, value: str) -> bool:
    table = lake.table(ident)
    return any(
        value
        in table.scan(snapshot_id=s.snapshot_id, selected_fields=(column,)).to_arrow()[column].to_pylist()
        for s in table.metadata.snapshots
    )


def _stored_bytes(settings) -> bytes:
    root = Path(settings.resolved_object_store)
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path):
    """Two received files: one only of passengers past their period (plus a quarantined line that
    quotes a passport number), one mixing a passenger past and one inside the period. Each record
    has an assessment, a queue item with an override and an inspection; two assessments are of
    records never stored (an old and a recent real-time call). SQLite and PostgreSQL."""
    settings = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(settings.resolved_ops_db_url)
    bad = json.dumps(_passenger("API9", "yesterday", "Q55500011"))
    old, old_key = _ingest(
        settings,
        _jsonl(tmp_path / "a", [_passenger("API1", OLD, "H87857782"), _passenger("API2", OLD, "H100")], bad),
    )
    mixed, mixed_key = _ingest(
        settings, _jsonl(tmp_path / "b", [_passenger("API3", OLD, "H300"), _passenger("API4", NEW, "H400")])
    )
    assert (old.stored, old.quarantined, mixed.stored) == (2, 1, 2)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    ids = _ids(lake)
    when = {"API1": datetime(2019, 4, 30, tzinfo=UTC), "API2": datetime(2019, 4, 30, tzinfo=UTC)}
    when |= {"API3": datetime(2019, 4, 30, tzinfo=UTC), "API4": datetime(2026, 9, 30, tzinfo=UTC)}
    rows = [_assessment(n, ids[ref], when[ref]) for n, ref in enumerate(sorted(ids), 1)]
    rows += [_assessment(8, "never-stored-old", datetime(2020, 1, 1, tzinfo=UTC))]
    rows += [_assessment(9, "never-stored-new", datetime(2026, 10, 30, tzinfo=UTC))]
    lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    lake.append(ASSESSMENTS_TABLE, pa.Table.from_pylist(rows[:3], schema=ASSESSMENTS_SCHEMA))
    lake.append(ASSESSMENTS_TABLE, pa.Table.from_pylist(rows[3:], schema=ASSESSMENTS_SCHEMA))
    with session_scope(settings.resolved_ops_db_url) as s:
        for n, ref in enumerate(sorted(ids), 1):
            s.add(
                RiskQueueItem(
                    assessment_id=f"a{n}", kind="passenger", record_id=ids[ref], subject_ref=ref,
                    score=80.0, lane="red", assigned_lane="red", assessed_at=when[ref],
                )
            )  # fmt: skip
            s.add(
                RiskOverride(assessment_id=f"a{n}", from_lane="red", to_lane="amber", actor="o", reason=ref)
            )
            s.add(
                RiskInspection(
                    inspection_id=f"i{n}", assessment_id=f"a{n}", kind="passenger", record_id=ids[ref],
                    outcome="nil", inspected_on=when[ref].date(), actor="o", findings=f"{ref} searched",
                )
            )  # fmt: skip
    return settings, lake, ids, old, old_key, mixed, mixed_key


def test_every_copy_of_a_record_past_its_period_goes(world):
    settings, lake, ids, old, old_key, mixed, mixed_key = world
    store = ObjectStore(settings.resolved_object_store)
    assert b"H87857782" in _stored_bytes(settings) and b"Q55500011" in _stored_bytes(settings)

    run = run_retention(settings, lake, actor="dpo", kinds=["passenger"], now=NOW)

    (result,) = run
    assert result.rows_deleted == 3  # API1, API2, API3
    assert result.copies == {
        ASSESSMENTS_TABLE: 4,  # the three records' assessments and the old one of a record never stored
        "risk_queue": 3,
        "risk_overrides": 3,
        "risk_inspections": 3,
    }
    assert set(_ids(lake)) == {"API4"}
    # Assessments: only the kept record's and the recent one of a record never stored, in time travel too.
    left = lake.table(ASSESSMENTS_TABLE).scan().to_arrow()
    assert sorted(left["record_id"].to_pylist()) == sorted([ids["API4"], "never-stored-new"])
    for gone in ("API1", "API2", "API3"):
        assert not _in_any_snapshot(lake, ASSESSMENTS_TABLE, "record_id", ids[gone])
        assert not _in_any_snapshot(lake, "std.passengers", "record_ref", gone)
    with session_scope(settings.resolved_ops_db_url) as s:
        assert [q.subject_ref for q in s.scalars(select(RiskQueueItem))] == ["API4"]
        assert [o.reason for o in s.scalars(select(RiskOverride))] == ["API4"]
        assert [i.record_id for i in s.scalars(select(RiskInspection))] == [ids["API4"]]
        # The file whose rows are all gone goes with its quarantine entry; the mixed file stays.
        assert not s.scalars(select(QuarantineRecord)).all()
    assert not store.exists(old_key) and store.exists(mixed_key)
    assert b"H87857782" not in _stored_bytes(settings) and b"Q55500011" not in _stored_bytes(settings)
    assert run.objects is not None
    sweep = run.objects
    assert (sweep.objects_deleted, sweep.batches_spent, sweep.rows_stored, sweep.quarantine_deleted) == (
        1,
        1,
        2,
        1,
    )
    assert sweep.held_until == {mixed_key: (date(2026, 10, 1) + timedelta(days=1826)).isoformat()}

    with session_scope(settings.resolved_ops_db_url) as s:
        (proof,) = list_entries(s, action="retention.run")
        (objects,) = list_entries(s, action="retention.objects")
        # The batch registry keeps the unit's provenance: name, fingerprint, counts.
        assert s.get(Batch, old.batch_id).stored == 2
    assert proof.details["copies"][ASSESSMENTS_TABLE] == 4 and proof.details["rows_deleted"] == 3
    assert objects.details["deleted_keys"] == [old_key] and objects.details["spent_batches"] == [old.batch_id]

    again = run_retention(settings, lake, kinds=["passenger"], now=NOW)
    assert again[0].rows_deleted == 0 and not any(again[0].copies.values())
    assert again.objects is not None and again.objects.objects_deleted == 0

    # Once the last row of the mixed file is past its period, the file goes too.
    later = run_retention(settings, lake, kinds=["passenger"], now=datetime(2031, 10, 3, tzinfo=UTC))
    assert later[0].rows_deleted == 1 and later[0].copies[ASSESSMENTS_TABLE] == 1
    # The real-time assessment of a record never stored counts from when it was made (2026-10-30).
    assert lake.table(ASSESSMENTS_TABLE).scan().to_arrow()["record_id"].to_pylist() == ["never-stored-new"]
    assert later.objects is not None and later.objects.deleted_keys == [mixed_key]
    assert not store.exists(mixed_key)


def test_a_file_is_kept_while_another_kind_under_retention_still_needs_it(world):
    """Running one kind never takes a file whose rows of another kind are kept: every rule in force
    decides. Here the passenger rule is run, and a batch also stored a crossing still in its period."""
    settings, lake, ids, old, old_key, *_ = world
    with session_scope(settings.resolved_ops_db_url) as s:
        s.get(Batch, old.batch_id).tables = {"std.passengers": 2, "std.conveyance_crossings": 1}
    crossing = get_kind("conveyance_crossing")
    lake.ensure_table(crossing.ident, crossing.arrow_schema())
    row = {"record_id": "c1", "source": "t", "batch_id": old.batch_id, "locator": "row 1", "ingested_at": NOW}
    row |= {"crossing_id": "X1", "control_point": "LMC", "direction": "IN", "conveyance_id": "KV1234"}
    row |= {"crossed_at": NOW - timedelta(days=10), "driver_name": "ZHENG DAZHI"}
    lake.append(crossing.ident, pa.Table.from_pylist([row], schema=crossing.arrow_schema()))
    run = run_retention(settings, lake, kinds=["passenger"], now=NOW)
    assert run[0].rows_deleted == 3
    assert ObjectStore(settings.resolved_object_store).exists(old_key)
    assert run.objects is not None and old_key in run.objects.held_until


def test_a_file_of_quarantined_rows_only_goes_after_the_longest_period(settings, tmp_path):
    migrate(settings.resolved_ops_db_url)
    bad = json.dumps(_passenger("API9", "yesterday", "Q55500011"))
    result, key = _ingest(settings, _jsonl(tmp_path / "q", [], bad))
    assert (result.stored, result.quarantined) == (0, 1)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    with session_scope(settings.resolved_ops_db_url) as s:
        longest = max(r.days for r in retention_rules(settings, s))
        received = s.get(Batch, result.batch_id).started_at.replace(tzinfo=UTC)
    store = ObjectStore(settings.resolved_object_store)
    soon = run_retention(settings, lake, kinds=["passenger"], now=received + timedelta(days=longest - 1))
    assert soon.objects is not None and soon.objects.objects_deleted == 0 and store.exists(key)
    late = run_retention(settings, lake, kinds=["passenger"], now=received + timedelta(days=longest + 1))
    assert late.objects is not None and late.objects.deleted_keys == [key] and not store.exists(key)
    with session_scope(settings.resolved_ops_db_url) as s:
        assert not s.scalars(select(QuarantineRecord)).all()


def test_reference_values_no_kept_record_holds_go(settings):
    """risk.reference_watchlist holds upper-cased names and document numbers of watch-list entries."""
    migrate(settings.resolved_ops_db_url)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    kind = get_kind("watchlist_entry")
    base = {
        "source": "t",
        "batch_id": "b",
        "locator": "row",
        "ingested_at": NOW,
        "listed_on": date(2018, 1, 1),
    }
    entries = [
        {"record_id": "w1", "list_id": "1", "name": "Zheng O'Dazhi", "document_number": "H87857782"},
        {"record_id": "w2", "list_id": "2", "name": "O'BRIEN LI", "document_number": "E1"},  # as w3
        {"record_id": "w3", "list_id": "3", "name": "O'Brien Li ", "document_number": "E2"},
    ]
    ends = {"w1": date(2020, 1, 1), "w2": date(2020, 1, 1), "w3": None}  # w3 is still listed
    rows = [base | e | {"expires_on": ends[e["record_id"]]} for e in entries]
    lake.ensure_table(kind.ident, kind.arrow_schema())
    lake.append(kind.ident, pa.Table.from_pylist(rows, schema=kind.arrow_schema()))
    values = ["E1", "E2", "H87857782", "O'BRIEN LI", "ZHENG O'DAZHI"]
    ref = pa.table({"value": values, "snapshot_id": ["s"] * 5})
    lake.ensure_table("risk.reference_watchlist", ref.schema)
    lake.replace("risk.reference_watchlist", ref)

    (result,) = run_retention(settings, lake, kinds=["watchlist_entry"], now=NOW)

    assert result.rows_deleted == 2 and result.copies["risk.reference_watchlist"] == 3
    left = lake.table("risk.reference_watchlist").scan().to_arrow()["value"].to_pylist()
    assert sorted(left) == ["E2", "O'BRIEN LI"]
    for gone in ("E1", "H87857782", "ZHENG O'DAZHI"):
        assert not _in_any_snapshot(lake, "risk.reference_watchlist", "value", gone)


@pytest.mark.parametrize("kind", personal_kinds())
def test_every_kind_with_personal_fields_has_a_retention_period(settings, kind):
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        rules = {r.kind: r for r in retention_rules(settings, s)}
    assert kind in rules, f"{kind} has personal fields and no retention period in retention.yaml"
    assert rules[kind].basis.strip(), f"{kind}: write the legal basis of its period"


def test_personal_kinds_are_found_from_the_classification():
    expected = {n for n, k in load_kinds().items() if any(f.classification == "personal" for f in k.fields)}
    assert set(personal_kinds()) == expected and {"passenger", "case", "watchlist_entry"} <= expected


def test_the_copies_are_real_tables_and_fields():
    by_record, by_value = record_copies()
    assert [c.table for c in by_record] == [ASSESSMENTS_TABLE]
    assert set(ASSESSMENTS_SCHEMA.names) >= {by_record[0].kind_column, by_record[0].record_column}
    assert {c.table for c in by_value} == {"risk.reference_watchlist", "risk.reference_history"}
