"""A header without a column the connector maps fails the batch (decision 0094).

It used to commit the batch with the whole file as one quarantine entry ("received 1" for a file
of 10 rows), which docs/transports.md said it would not. Now nothing of the file is committed, the
error names the column and the connector's file, and once the file or the connector is fixed the
same batch is retried and each row counted.
"""

from __future__ import annotations

from sqlalchemy import select

from sciti.acquire import Runner, list_quarantine
from sciti.acquire.transports import FolderSpec, FolderWatcher, parse_transport
from sciti.ops import Batch, session_scope
from sciti.settings import Settings
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, decl_connector, rows

C6 = HEADER + "\n" + "".join(f"C6-{i},2024-07-0{1 + i % 9},KRPUS,{i + 1},USD,851713,\n" for i in range(10))


def typo_connector(settings: Settings):
    """The decl connector with `office` misspelt in its declaration output."""
    (decl, item) = DECL_CONNECTOR["outputs"]
    return decl_connector(
        settings, outputs=[{**decl, "fields": {**decl["fields"], "office_code": "ofice"}}, item]
    )


def registry(settings: Settings) -> list[Batch]:
    with session_scope(settings.resolved_ops_db_url) as s:
        return list(s.scalars(select(Batch)))


def test_a_mapped_column_missing_from_the_header_fails_the_batch(
    acq_settings: Settings, runner: Runner
) -> None:
    failed = runner.ingest_bytes(typo_connector(acq_settings), C6.encode(), "c6.csv")
    assert failed.status == "failed"
    error = failed.error or ""
    assert "c6.csv: the header has no column 'ofice', which connector decl maps" in error
    assert str(acq_settings.connectors_dir / "decl" / "connector.yaml") in error
    assert "declaration_id, date, office, amount" in error  # what the header does have
    (batch,) = registry(acq_settings)
    assert (batch.status, batch.received, batch.stored, batch.quarantined) == ("failed", 0, 0, 0)
    assert list_quarantine(acq_settings) == []
    assert rows(acq_settings, "std.declarations") == [] and rows(acq_settings, "raw.decl") == []

    fixed = runner.ingest_bytes(decl_connector(acq_settings), C6.encode(), "c6.csv")  # connector fixed
    assert (fixed.status, fixed.batch_id, fixed.received, fixed.stored) == (
        "committed",
        failed.batch_id,
        10,
        10,
    )
    assert len(rows(acq_settings, "std.declarations")) == 10


def test_a_file_cut_short_before_a_column_fails_until_sent_whole(
    acq_settings: Settings, runner: Runner
) -> None:
    conn = decl_connector(acq_settings)
    short = "Declaration ID,Date\nX1,2024-01-01\n"
    failed = runner.ingest_bytes(conn, short.encode(), "short.csv")
    assert failed.status == "failed" and "no column 'office'" in (failed.error or "")
    assert "send it again whole" in (failed.error or "")
    assert list_quarantine(acq_settings) == []
    assert runner.ingest_bytes(conn, C6.encode(), "short.csv").status == "committed"  # the whole export


def test_an_unknown_encoding_in_the_connector_fails_the_batch(acq_settings: Settings, runner: Runner) -> None:
    conn = decl_connector(acq_settings, options={"encoding": "utf-9"})
    failed = runner.ingest_bytes(conn, C6.encode(), "c6.csv")
    assert failed.status == "failed" and "unknown encoding 'utf-9'" in (failed.error or "")
    assert list_quarantine(acq_settings) == []


def test_a_dropped_file_missing_a_column_ends_in_failed_with_the_reason(acq_settings: Settings) -> None:
    conn = typo_connector(acq_settings)
    spec = parse_transport(
        {"type": "folder", "path": "decl", "poll_seconds": 0.1, "settle_seconds": 0, "attempts": 2},
        connector="decl",
    )
    assert isinstance(spec, FolderSpec)
    watcher = FolderWatcher(acq_settings, conn, spec, Runner(acq_settings))
    watcher.scan_once()
    (watcher.root / "c6.csv").write_text(C6, encoding="utf-8")
    assert watcher.scan_once() == []  # the first failure is retried next round
    (taken,) = watcher.scan_once()
    assert not taken.ok and taken.moved_to.parent == watcher.root / "failed"
    reason = taken.moved_to.with_name("c6.csv.error.txt").read_text(encoding="utf-8")
    assert "no column 'ofice'" in reason and "connector.yaml" in reason
    assert list_quarantine(acq_settings) == []
