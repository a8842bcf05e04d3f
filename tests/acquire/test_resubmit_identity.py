"""A re-submission is a unit of its own, and an entry is closed only when rows came in (decision 0094).

A re-submission used to be known by its bytes alone: the original file sent back once its
connector was fixed was the ``duplicate`` of the batch that had quarantined it, and the entry was
closed as ``resubmitted`` with nothing stored.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from sciti.acquire import AcquireError, Runner, list_quarantine, resubmit, show_quarantine
from sciti.acquire.blobs import put_bytes
from sciti.acquire.quarantine import resubmission_fingerprint
from sciti.ops import Batch, QuarantineRecord, session_scope, utcnow
from sciti.settings import Settings
from tests.acquire.conftest import HEADER, decl_connector, rows

C6 = HEADER + "\n" + "".join(f"C6-{i},2024-07-0{1 + i % 9},KRPUS,{i + 1},USD,851713,\n" for i in range(10))
WITH_BAD = (
    f"{HEADER}\nQ1,2024-07-01,KRPUS,1,USD,851713,\nQ2,2024-07-02,KRPUS,2,USD,851713,\n"
    "Q3,2024-07-03,KRPUS,x,USD,851713,\n"
)
Q3_FIXED = f"{HEADER}\nQ3,2024-07-03,KRPUS,3,USD,851713,\n"


def entry_for(settings: Settings, locator: str) -> dict:
    (found,) = [e for e in list_quarantine(settings) if e["locator"] == locator]
    return found


def test_a_whole_file_entry_is_stored_by_resubmitting_the_file(
    acq_settings: Settings, runner: Runner
) -> None:
    """The review's entry 563: c6.csv committed by an earlier version as one quarantine entry
    (received 1 = stored 0 + quarantined 1) because its connector named a missing column."""
    conn = decl_connector(acq_settings)
    data = C6.encode()
    key = put_bytes(acq_settings, data)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        batch = Batch(
            id=uuid.uuid4().hex, connector="decl", source="decl", transport="file", unit="c6.csv",
            fingerprint=key, object_key=key, status="committed", received=1, stored=0, quarantined=1,
            started_at=utcnow(), finished_at=utcnow(),
        )  # fmt: skip
        s.add(batch)
        s.flush()
        s.add(
            QuarantineRecord(
                batch_id=batch.id, connector="decl", source="decl", locator="c6.csv",
                reason="the unit has no column 'office' needed by the connector's outputs",
                raw=None, details={}, status="open", created_at=utcnow(),
            )
        )  # fmt: skip
    entry = entry_for(acq_settings, "c6.csv")
    assert runner.ingest_bytes(conn, data, "c6.csv").status == "duplicate"  # why it must be re-submitted
    with pytest.raises(AcquireError, match="has no text to re-submit"):
        resubmit(acq_settings, entry["id"], None, user="tester")

    result = resubmit(acq_settings, entry["id"], C6, user="tester")
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 10, 10, 0)
    closed = show_quarantine(acq_settings, entry["id"])
    assert closed["status"] == "resubmitted" and closed["resubmit_batch_id"] == result.batch_id
    stored = rows(acq_settings, "std.declarations")
    assert len(stored) == 10 and {r["batch_id"] for r in stored} == {result.batch_id}
    assert stored[0]["locator"].startswith(f"c6.csv#resubmit-{entry['id']}:line ")


def test_a_resubmission_that_gives_no_rows_leaves_the_entry_open(
    acq_settings: Settings, runner: Runner
) -> None:
    conn = decl_connector(acq_settings)
    runner.ingest_bytes(conn, WITH_BAD.encode(), "r.csv")
    entry = entry_for(acq_settings, "r.csv:line 4")
    with pytest.raises(AcquireError, match=f"quarantine entry {entry['id']} stays open") as refused:
        resubmit(acq_settings, entry["id"], HEADER + "\n", user="tester")  # the header, no row
    assert "--file" in (refused.value.remedy or "") and "discard" in (refused.value.remedy or "")
    assert show_quarantine(acq_settings, entry["id"])["status"] == "open"
    # ... and the corrected row then closes it, stored once.
    result = resubmit(acq_settings, entry["id"], Q3_FIXED, user="tester")
    assert (result.status, result.stored) == ("committed", 1)
    assert show_quarantine(acq_settings, entry["id"])["status"] == "resubmitted"
    assert sorted(r["declaration_id"] for r in rows(acq_settings, "std.declarations")) == ["Q1", "Q2", "Q3"]


def test_a_resubmission_committed_before_its_entry_was_closed_closes_it(
    acq_settings: Settings, runner: Runner
) -> None:
    """A crash between the re-submission's commit and closing its entry: sending it again finds its
    own batch (``duplicate``) and closes the entry, storing nothing twice."""
    conn = decl_connector(acq_settings)
    runner.ingest_bytes(conn, WITH_BAD.encode(), "r.csv")
    entry = entry_for(acq_settings, "r.csv:line 4")
    data = Q3_FIXED.encode()
    first = runner.ingest_bytes(
        conn,
        data,
        f"r.csv#resubmit-{entry['id']}",
        transport="resubmit",
        resubmission_of=entry["id"],
        fingerprint=resubmission_fingerprint(entry["id"], data),
    )
    assert first.status == "committed"
    again = resubmit(acq_settings, entry["id"], Q3_FIXED, user="tester")
    assert (again.status, again.batch_id) == ("duplicate", first.batch_id)
    closed = show_quarantine(acq_settings, entry["id"])
    assert closed["status"] == "resubmitted" and closed["resubmit_batch_id"] == first.batch_id
    assert [r["declaration_id"] for r in rows(acq_settings, "std.declarations")].count("Q3") == 1


def test_the_same_bytes_as_a_committed_unit_are_a_new_batch_when_resubmitted(
    acq_settings: Settings, runner: Runner
) -> None:
    """The unit as received, sent back unchanged for its one quarantined row, is its own batch."""
    conn = decl_connector(acq_settings)
    only_bad = f"{HEADER}\nQ3,2024-07-03,KRPUS,x,USD,851713,\n"  # one record: a row entry takes one
    runner.ingest_bytes(conn, only_bad.encode(), "r.csv")
    entry = entry_for(acq_settings, "r.csv:line 2")
    result = resubmit(acq_settings, entry["id"], only_bad, user="tester")
    assert result.status == "committed" and (result.stored, result.quarantined) == (0, 1)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        batch = s.get(Batch, result.batch_id)
        assert batch is not None and batch.resubmission_of == entry["id"]
        assert batch.fingerprint == resubmission_fingerprint(entry["id"], only_bad.encode())
        reopened = s.scalars(
            select(QuarantineRecord).where(QuarantineRecord.batch_id == result.batch_id)
        ).all()
    # Quarantined again: the row waits under a new open entry of the new batch.
    assert [q.status for q in reopened] == ["open"]
    assert reopened[0].locator == f"r.csv#resubmit-{entry['id']}:line 2"
