"""A record is stored once (decisions 0100 and 0105): a record whose key another batch already
stored, or an earlier row of the same batch holds, is not stored again. With the same values its
source row is counted as already stored; with other values it is quarantined with a reason that
says which batch has it and which fields differ. Counts reconcile:
received = stored + quarantined + already stored."""

from __future__ import annotations

import collections
import contextlib
import json

import pyarrow.parquet as pq
import pytest

from sciti.acquire import Runner, list_quarantine, stored_keys
from tests.acquire.conftest import HEADER, decl_connector, rows, write_connector

ROWS = [
    "D1,2024-01-05,BE001,100.00,EUR,010121,",
    "D2,2024-01-06,BE001,200.00,EUR,010121,",
]


def _csv(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def _ids(settings, ident: str) -> collections.Counter[str]:
    return collections.Counter(r["record_id"] for r in rows(settings, ident))


def _counts(result) -> tuple[int, int, int, int]:
    return result.received, result.stored, result.quarantined, result.already_stored


@pytest.mark.parametrize("small_rows", [10_000, 0], ids=["ids-kept-in-memory", "read-by-duckdb"])
def test_a_record_stored_with_other_values_is_quarantined_with_its_items(
    acq_settings, runner: Runner, monkeypatch: pytest.MonkeyPatch, small_rows: int
) -> None:
    """D1 again with the same values is counted as already stored (no entry); D2 with another
    amount is quarantined; D3 is new and stored. The same whether the stored ids of small files
    come from memory or every file is read by DuckDB (``SMALL_FILE_ROWS`` 0)."""
    monkeypatch.setattr(stored_keys, "SMALL_FILE_ROWS", small_rows)
    conn = decl_connector(acq_settings)
    first = runner.ingest_bytes(conn, _csv(*ROWS), "first.csv")
    changed = "D2,2024-01-06,BE001,250.00,EUR,010121,"
    new = "D3,2024-01-07,BE001,300.00,EUR,010121,"
    later = runner.ingest_bytes(conn, _csv(ROWS[0], changed, new), "later.csv")
    assert first.status == later.status == "committed"
    assert _counts(later) == (3, 1, 1, 1)
    for ident in ("std.declarations", "std.declaration_items"):
        ids = _ids(acq_settings, ident)
        assert len(ids) == 3 and max(ids.values()) == 1, ident  # D1, D2 once; D3 stored
    entries = {e["locator"]: e["reason"] for e in list_quarantine(acq_settings, limit=10)}
    assert list(entries) == ["later.csv:line 3"]
    differ = entries["later.csv:line 3"]
    assert differ.startswith(
        f"declaration D2 version 1 is already stored from batch {first.batch_id} (first.csv) "
        "with different values (fields: invoice_amount)"
    )
    assert "send it as a new version (an amendment) or discard this entry" in differ


def test_one_output_fast_path_checks_stored_keys_too(acq_settings, runner: Runner) -> None:
    """A connector with one output writes rows in the pass itself: stored keys are held back there."""
    conn = decl_connector(
        acq_settings, outputs=[decl_connector(acq_settings).outputs[0].model_dump(exclude_none=True)]
    )
    assert len(conn.outputs) == 1
    runner.ingest_bytes(conn, _csv(*ROWS), "a.csv")
    again = runner.ingest_bytes(conn, _csv(*ROWS, "D9,2024-01-05,BE001,1.00,EUR,010121,"), "b.csv")
    assert _counts(again) == (3, 1, 0, 2)
    ids = _ids(acq_settings, "std.declarations")
    assert len(ids) == 3 and max(ids.values()) == 1
    changed = runner.ingest_bytes(conn, _csv("D9,2024-01-05,BE001,2.00,EUR,010121,"), "c.csv")
    assert _counts(changed) == (1, 0, 1, 0)


def test_a_record_twice_in_one_batch_is_stored_once(acq_settings, runner: Runner) -> None:
    """The same row twice: the second copy is counted as already stored. The same key with other
    values: the first copy is stored, the other quarantined."""
    conn = decl_connector(acq_settings)
    other = "D1,2024-01-05,BE001,999.00,EUR,010121,"
    result = runner.ingest_bytes(conn, _csv(ROWS[0], ROWS[1], ROWS[0], other), "twice.csv")
    assert _counts(result) == (4, 2, 1, 1)
    ids = _ids(acq_settings, "std.declarations")
    assert len(ids) == 2 and max(ids.values()) == 1
    (entry,) = list_quarantine(acq_settings, limit=10)
    assert entry["locator"] == "twice.csv:line 5"
    assert (
        "declaration D1 version 1 appears twice in this batch with different values: the copy at "
        "twice.csv:line 2 is stored" in entry["reason"]
    )


def test_recovery_does_not_reject_the_batch_own_rows(acq_settings, runner: Runner, monkeypatch) -> None:
    """A batch that died after its first table was appended is recovered: its own rows there are
    not "another batch", so nothing is quarantined and each record is stored once."""
    conn = decl_connector(acq_settings)
    original = runner.lake.append_files
    calls = []

    def die_after_first(ident, files, *, batch_id=None):
        calls.append(ident)
        done = original(ident, files, batch_id=batch_id)
        if len(calls) == 1:
            raise KeyboardInterrupt("the process died")
        return done

    monkeypatch.setattr(runner.lake, "append_files", die_after_first)
    with contextlib.suppress(KeyboardInterrupt):
        runner.ingest_bytes(conn, _csv(*ROWS), "crash.csv")
    monkeypatch.setattr(runner.lake, "append_files", original)
    fresh = Runner(acq_settings)
    monkeypatch.setattr("sciti.acquire.runner.owner_gone", lambda _owner: True)
    (result,) = fresh.recover()
    assert (result.status, result.stored, result.quarantined, result.already_stored) == ("committed", 2, 0, 0)
    for ident in ("std.declarations", "std.declaration_items"):
        ids = _ids(acq_settings, ident)
        assert len(ids) == 2 and max(ids.values()) == 1, ident


def test_a_json_unit_already_stored_is_counted_or_quarantined_whole(acq_settings, runner: Runner) -> None:
    """Record-style units (JSON lines): a unit whose records are all stored with the same values is
    counted as already stored; one whose declaration is stored with other values is rejected whole,
    its items with it."""
    conn = write_connector(
        acq_settings,
        {"name": "canon", "source": "canon", "format": "jsonl", "kinds": ["declaration", "declaration_item"]},
    )
    line = {
        "declaration": {"declaration_id": "K1", "version": 1, "office_code": "X"},
        "declaration_item": [
            {"declaration_id": "K1", "declaration_version": 1, "item_number": 1, "hs_code": "851713"}
        ],
    }
    body = json.dumps(line).encode() + b"\n"
    first = runner.ingest_bytes(conn, body, "one.jsonl")
    assert (first.status, first.stored) == ("committed", 1)
    again = runner.ingest_bytes(conn, body + b"\n", "two.jsonl")
    assert _counts(again) == (1, 0, 0, 1)
    assert list_quarantine(acq_settings) == []
    line["declaration"]["office_code"] = "Y"
    line["declaration_item"][0]["hs_code"] = "851714"
    changed = runner.ingest_bytes(conn, json.dumps(line).encode() + b"\n", "three.jsonl")
    assert _counts(changed) == (1, 0, 1, 0)
    for ident in ("std.declarations", "std.declaration_items"):
        assert list(_ids(acq_settings, ident).values()) == [1], ident
    (entry,) = list_quarantine(acq_settings)
    assert entry["reason"].startswith(
        f"declaration K1 version 1 is already stored from batch {first.batch_id} (one.jsonl) with "
        "different values (fields: hs_code, office_code)"
    )
    assert "so are declaration item K1 version 1 item 1" in entry["reason"]


def test_tables_with_deletes_are_read_through_pyiceberg(acq_settings, runner: Runner, monkeypatch) -> None:
    """Files with delete files (or in an object store) are read by pyiceberg: the same outcome."""
    from sciti.acquire import runner as runner_module
    from sciti.acquire.stored_keys import StoredIds, stored_ids

    def through_pyiceberg(lake, ident, batch_id):
        found = stored_ids(lake, ident, batch_id)
        return found and StoredIds(ident, batch_id, (), lake.table(ident))

    monkeypatch.setattr(runner_module, "stored_ids", through_pyiceberg)
    conn = decl_connector(acq_settings)
    first = runner.ingest_bytes(conn, _csv(*ROWS), "first.csv")
    later = runner.ingest_bytes(conn, _csv(ROWS[0], "D2,2024-01-06,BE001,250.00,EUR,010121,"), "later.csv")
    assert _counts(later) == (2, 0, 1, 1)
    (entry,) = list_quarantine(acq_settings, limit=10)
    assert entry["reason"].startswith(
        f"declaration D2 version 1 is already stored from batch {first.batch_id}"
    )
    assert "with different values (fields: invoice_amount)" in entry["reason"]


def test_a_small_file_is_read_once_for_the_stored_ids(acq_settings, runner: Runner, monkeypatch) -> None:
    """A table fed in small batches: each batch's check reads only the file the last batch added;
    the ids of the files before it are kept (decision 0121). A file without the columns (one from
    before they existed) is left to DuckDB."""
    read: list[str] = []
    real = pq.read_table

    def counted(path, *args, **kwargs):
        read.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(stored_keys.pq, "read_table", counted)
    conn = decl_connector(acq_settings)
    for n in range(4):
        runner.ingest_bytes(conn, _csv(f"D{n},2024-01-05,BE001,100.00,EUR,010121,"), f"push-{n}.csv")
    tables = 2  # declarations and their items
    assert len(read) == 3 * tables and len(set(read)) == len(read)  # batches 2-4, each file once
    resent = _csv("D1,2024-01-05,BE001,100.00,EUR,010121,", "D9,2024-01-05,BE001,100.00,EUR,010121,")
    again = runner.ingest_bytes(conn, resent, "again.csv")
    assert _counts(again) == (2, 1, 0, 1)  # D1 found among the kept ids
    assert len(read) == 4 * tables
    assert stored_keys._small_file_ids(read[0]) is not None
    bare = acq_settings.home / "bare.parquet"
    pq.write_table(pq.read_table(read[0]).drop_columns(["batch_id"]), bare)
    assert stored_keys._small_file_ids(str(bare)) is None
