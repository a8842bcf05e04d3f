"""The runner's protocol: duplicates, bytes and rows, JSON Lines, Parquet, recovery, PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from sciti.acquire import FORMATS, Runner, list_batches, list_quarantine, show_quarantine
from sciti.lake import open_lake
from sciti.ops import Batch, session_scope
from tests.acquire.conftest import HEADER, decl_connector, rows, write_connector

CSV = f"{HEADER}\nB1,2024-03-01,KRPUS,10,USD,851713,\nB2,2024-03-02,KRPUS,11,USD,999999,\n"


def test_same_file_twice_is_a_duplicate_and_stores_nothing(acq_settings, runner: Runner, tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    conn = decl_connector(acq_settings)
    (first,) = runner.ingest_path(conn, path)
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(path.read_bytes())
    (again,) = runner.ingest_path(conn, copy)
    assert (first.status, again.status) == ("committed", "duplicate")
    assert again.batch_id == first.batch_id and again.stored == 0
    assert len(rows(acq_settings, "std.declarations")) == 1
    assert len(list_quarantine(acq_settings)) == 1
    assert len(list_batches(acq_settings)) == 1


def test_ingest_bytes_keeps_the_original_and_a_raw_row(acq_settings, runner: Runner) -> None:
    result = runner.ingest_bytes(decl_connector(acq_settings), CSV.encode(), "push-1.csv")
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 2, 1, 1)
    (raw,) = rows(acq_settings, "raw.decl")
    assert raw["batch_id"] == result.batch_id and raw["unit"] == "push-1.csv" and raw["record_count"] == 2
    stored = open_lake(acq_settings.resolved_catalog_uri, acq_settings.resolved_warehouse)
    assert stored.has_batch("std.declarations", result.batch_id)
    from sciti.acquire.blobs import object_path

    assert object_path(acq_settings, raw["object_key"]).read_bytes() == CSV.encode()
    assert runner.ingest_bytes(decl_connector(acq_settings), CSV.encode(), "push-2.csv").status == "duplicate"


@pytest.mark.parametrize("as_table", [False, True])
def test_ingest_rows_maps_source_columns(acq_settings, runner: Runner, as_table: bool) -> None:
    data = [
        {
            "Declaration ID": "R1",
            "Date": "2024-04-01",
            "Office": "KRPUS",
            "Amount": 5,
            "Currency": "USD",
            "HS Code": "851713",
            "Container": None,
        },
        {
            "Declaration ID": "R2",
            "Date": "not a date",
            "Office": "KRPUS",
            "Amount": 6,
            "Currency": "USD",
            "HS Code": "851713",
            "Container": None,
        },
    ]
    payload = pa.Table.from_pylist(data) if as_table else data
    conn = decl_connector(acq_settings)
    result = runner.ingest_rows(conn, payload, "window-1", fingerprint="wm:0-2", transport="sql")
    assert result.status == "committed", result.error
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "window-1#row=2" and "acceptance_date" in entry["reason"]
    again = runner.ingest_rows(conn, payload, "window-1", fingerprint="wm:0-2", transport="sql")
    assert again.status == "duplicate"


def test_jsonl_with_outputs_is_mapped_like_csv(acq_settings, runner: Runner) -> None:
    conn = decl_connector(acq_settings, name="njson", format="jsonl", files="*.jsonl")
    lines = [
        {
            "declaration id": "J1",
            "date": "2024-05-01",
            "office": "KRPUS",
            "amount": 1.5,
            "currency": "USD",
            "hs code": "851713",
        },
        "this is not json",
        {
            "declaration id": "J2",
            "date": "2024-05-02",
            "office": "KRPUS",
            "amount": 2,
            "currency": "USD",
            "hs code": "123",
        },
    ]
    body = b"\n".join(orjson.dumps(x) if isinstance(x, dict) else x.encode() for x in lines) + b"\n"
    result = runner.ingest_bytes(conn, body, "post.jsonl")
    assert result.status == "committed", result.error
    assert (result.received, result.stored, result.quarantined) == (3, 1, 2)
    reasons = {q["locator"]: q["reason"] for q in list_quarantine(acq_settings)}
    assert "not valid JSON" in reasons["post.jsonl:line 2"]
    assert "hs_code" in reasons["post.jsonl:line 3"]
    (decl,) = rows(acq_settings, "std.declarations")
    assert decl["locator"] == "post.jsonl:line 1" and decl["declaration_id"] == "J1"


def test_jsonl_without_outputs_reads_canonical_records(acq_settings, runner: Runner) -> None:
    conn = write_connector(
        acq_settings,
        {"name": "canon", "source": "canon", "format": "jsonl", "kinds": ["declaration", "declaration_item"]},
    )
    good = {
        "declaration": {"declaration_id": "K1", "version": 1, "office_code": "X"},
        "declaration_item": [
            {"declaration_id": "K1", "declaration_version": 1, "item_number": 1, "hs_code": "851713"}
        ],
    }
    bad = {"declaration": {"declaration_id": "K2", "version": "one"}}
    body = orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\n"
    result = runner.ingest_bytes(conn, body, "canon.jsonl")
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    (decl,) = rows(acq_settings, "std.declarations")
    (item,) = rows(acq_settings, "std.declaration_items")
    assert item["parent_record_id"] == decl["record_id"]
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "canon.jsonl:line 2" and "version" in entry["reason"]


def test_parquet_files(acq_settings, runner: Runner, tmp_path) -> None:
    table = pa.table(
        {
            "Declaration ID": ["P1", "P2"],
            "Date": ["2024-06-01", "2024-06-02"],
            "Office": ["A", "B"],
            "Amount": [1.0, 2.0],
            "Currency": ["USD", "usd?"],
            "HS Code": ["851713", "851713"],
            "Container": [None, None],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = tmp_path / "p.parquet"
    path.write_bytes(sink.getvalue())
    conn = decl_connector(acq_settings, name="pq", format="parquet", files="*.parquet")
    (result,) = runner.ingest_path(conn, path)
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    assert list_quarantine(acq_settings)[0]["locator"] == "p.parquet#row=2"
    truncated = tmp_path / "t.parquet"
    truncated.write_bytes(sink.getvalue()[:-20])
    (broken,) = runner.ingest_path(conn, truncated)
    assert (broken.status, broken.received, broken.quarantined) == ("committed", 1, 1)


def test_a_batch_left_running_is_recovered_without_double_writes(acq_settings, runner: Runner) -> None:
    """Simulate a crash after the lake commits but before the batch was marked committed."""
    conn = decl_connector(acq_settings)
    done = runner.ingest_bytes(conn, CSV.encode(), "r.csv")
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        batch = s.get(Batch, done.batch_id)
        batch.status = "running"
    from sciti.ops import QuarantineRecord

    with session_scope(acq_settings.resolved_ops_db_url) as s:  # the crash lost the quarantine txn
        s.query(QuarantineRecord).delete()
    (recovered,) = Runner(acq_settings).recover()
    assert recovered.status == "committed" and recovered.batch_id == done.batch_id
    assert len(rows(acq_settings, "std.declarations")) == 1
    assert len(rows(acq_settings, "raw.decl")) == 1
    assert len(list_quarantine(acq_settings)) == 1
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        assert s.scalars(select(Batch.status)).all() == ["committed"]


def test_failed_batch_is_retried_under_the_same_id(acq_settings, runner: Runner, tmp_path) -> None:
    broken = decl_connector(
        acq_settings,
        outputs=[
            {
                "kind": "declaration",
                "fields": {"declaration_id": "declaration_id", "version": "nosuchfunc(1)"},
            }
        ],
    )
    first = runner.ingest_bytes(broken, CSV.encode(), "f.csv")
    assert first.status == "failed"
    fixed = decl_connector(acq_settings)
    second = runner.ingest_bytes(fixed, CSV.encode(), "f.csv")
    assert (second.status, second.batch_id) == ("committed", first.batch_id)


def test_formats_registry_names_every_format() -> None:
    assert {"csv", "jsonl", "parquet", "wco-xml", "edifact"} <= set(FORMATS)


@pytest.mark.postgres
def test_ingest_on_postgresql(pg_settings, tmp_path) -> None:
    (tmp_path / "pgconn").mkdir()
    settings = pg_settings.model_copy(update={"connectors_dir": tmp_path / "pgconn"})
    conn = decl_connector(settings)
    runner = Runner(settings)
    result = runner.ingest_bytes(conn, CSV.encode(), "pg.csv")
    assert (result.status, result.stored, result.quarantined) == ("committed", 1, 1)
    assert runner.ingest_bytes(conn, CSV.encode(), "pg.csv").status == "duplicate"
    (entry,) = list_quarantine(settings)
    assert entry["locator"] == "pg.csv:line 3"
    assert datetime.fromisoformat(entry["created_at"]).year >= datetime.now(UTC).year - 1
    full = show_quarantine(settings, entry["id"])  # written by COPY on PostgreSQL: JSON and text intact
    assert full["details"]["problems"] and full["raw"].startswith(HEADER)
