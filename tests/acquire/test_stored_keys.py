"""A record is stored once (decision 0100): a record whose key another batch already stored, or an
earlier row of the same batch holds, is quarantined with its source row, with a reason that says
which batch has it and whether the values differ; counts reconcile."""

from __future__ import annotations

import collections
import contextlib
import json

from sciti.acquire import Runner, list_quarantine
from tests.acquire.conftest import HEADER, decl_connector, rows, write_connector

ROWS = [
    "D1,2024-01-05,BE001,100.00,EUR,010121,",
    "D2,2024-01-06,BE001,200.00,EUR,010121,",
]


def _csv(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def _ids(settings, ident: str) -> collections.Counter[str]:
    return collections.Counter(r["record_id"] for r in rows(settings, ident))


def test_a_record_already_stored_is_quarantined_with_its_items(acq_settings, runner: Runner) -> None:
    conn = decl_connector(acq_settings)
    first = runner.ingest_bytes(conn, _csv(*ROWS), "first.csv")
    changed = "D2,2024-01-06,BE001,250.00,EUR,010121,"
    new = "D3,2024-01-07,BE001,300.00,EUR,010121,"
    later = runner.ingest_bytes(conn, _csv(ROWS[0], changed, new), "later.csv")
    assert first.status == later.status == "committed"
    assert (later.received, later.stored, later.quarantined) == (3, 1, 2)
    for ident in ("std.declarations", "std.declaration_items"):
        ids = _ids(acq_settings, ident)
        assert len(ids) == 3 and max(ids.values()) == 1, ident  # D1, D2 once; D3 stored
    entries = {e["locator"]: e["reason"] for e in list_quarantine(acq_settings, limit=10)}
    same, differ = entries["later.csv:line 2"], entries["later.csv:line 3"]
    assert same.startswith(
        f"already stored: declaration D1 version 1 came in batch {first.batch_id} (first.csv)"
    )
    assert "identical" in same
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
    assert (again.received, again.stored, again.quarantined) == (3, 1, 2)
    ids = _ids(acq_settings, "std.declarations")
    assert len(ids) == 3 and max(ids.values()) == 1


def test_a_record_twice_in_one_batch_is_stored_once(acq_settings, runner: Runner) -> None:
    conn = decl_connector(acq_settings)
    result = runner.ingest_bytes(conn, _csv(ROWS[0], ROWS[1], ROWS[0]), "twice.csv")
    assert (result.received, result.stored, result.quarantined) == (3, 2, 1)
    ids = _ids(acq_settings, "std.declarations")
    assert len(ids) == 2 and max(ids.values()) == 1
    (entry,) = list_quarantine(acq_settings, limit=10)
    assert entry["locator"] == "twice.csv:line 4"
    assert (
        "declaration D1 version 1 appears twice in this batch: the copy at twice.csv:line 2"
        in entry["reason"]
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
    assert (result.status, result.stored, result.quarantined) == ("committed", 2, 0)
    for ident in ("std.declarations", "std.declaration_items"):
        ids = _ids(acq_settings, ident)
        assert len(ids) == 2 and max(ids.values()) == 1, ident


def test_a_json_unit_already_stored_is_quarantined_whole(acq_settings, runner: Runner) -> None:
    """Record-style units (JSON lines): a unit whose declaration is stored is rejected whole."""
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
    assert (again.received, again.stored, again.quarantined) == (1, 0, 1)
    for ident in ("std.declarations", "std.declaration_items"):
        assert list(_ids(acq_settings, ident).values()) == [1], ident
    (entry,) = list_quarantine(acq_settings)
    assert entry["reason"].startswith(
        f"already stored: declaration K1 version 1 came in batch {first.batch_id}"
    )
    assert "declaration item K1 version 1 item 1" in entry["reason"]


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
    assert (later.received, later.stored, later.quarantined) == (2, 0, 2)
    reasons = sorted(e["reason"] for e in list_quarantine(acq_settings, limit=10))
    assert reasons[0].startswith(f"already stored: declaration D1 version 1 came in batch {first.batch_id}")
    assert "with different values (fields: invoice_amount)" in reasons[1]
