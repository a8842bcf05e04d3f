"""Entries of one original unit re-submitted together as one batch (decision 0120).

Each entry stays its own: it is closed by the bundle's batch only when its own text gave records,
with its own audit entry; an entry that cannot go in a bundle (a whole unit) goes alone, and so
does every entry of a bundle whose batch failed.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from sciti.access import list_entries
from sciti.acquire import Runner, list_quarantine, load_connector, resubmit
from sciti.acquire.quarantine_bulk import Selection
from sciti.acquire.quarantine_bundle import Entry, bundle_bytes, bundle_fingerprint, plan
from sciti.acquire.quarantine_resubmit import resubmit_selection
from sciti.acquire.units import BUNDLE
from sciti.acquire.validation import codelists
from sciti.lake import open_lake
from sciti.lake.files import snapshot_files
from sciti.model.codelists import _load
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope
from sciti.settings import Settings
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, decl_connector, rows, write_connector
from tests.acquire.test_quarantine_resubmit_bulk import FIXED, ITEMS, lost_zero
from tests.conftest import make_settings

EDIFACT = Path(__file__).resolve().parents[1] / "fixtures" / "edifact" / "cusdec_d96b.edi"


@pytest.fixture
def decl(acq_settings: Settings) -> Settings:
    migrate(acq_settings.resolved_ops_db_url)
    return acq_settings


def entries(settings: Settings, status: str = "open") -> list[QuarantineRecord]:
    with session_scope(settings.resolved_ops_db_url) as s:
        query = select(QuarantineRecord).where(QuarantineRecord.status == status)
        return list(s.scalars(query.order_by(QuarantineRecord.id)))


def batches(settings: Settings, transport: str) -> list[Batch]:
    with session_scope(settings.resolved_ops_db_url) as s:
        return list(s.scalars(select(Batch).where(Batch.transport == transport).order_by(Batch.started_at)))


def test_entries_of_two_files_go_as_two_batches_and_a_whole_file_alone(decl: Settings) -> None:
    connector = decl_connector(decl)
    runner = Runner(decl)
    runner.ingest_bytes(connector, lost_zero(3, "A"), "a.csv")
    runner.ingest_bytes(connector, b"\n", "empty.csv")  # the whole file: one entry, and no text
    runner.ingest_bytes(connector, lost_zero(2, "B"), "push-7")  # a name outside the connector's *.csv
    ids = [q.id for q in entries(decl)]
    assert len(ids) == 6
    assert list(plan(decl, ids)) == [ids[:3], [ids[3]], ids[4:]]

    write_connector(decl, FIXED)
    done = resubmit_selection(decl, Selection(connector="decl"), "engineer")
    assert (done.selected, done.resubmitted, done.stored, done.still_open) == (6, 5, 5, 1)
    [why] = done.reasons  # the empty file, re-submitted alone, says what is wrong with it
    assert why.ids == [ids[3]] and "has no text to re-submit" in why.why
    made = batches(decl, BUNDLE)
    assert [(b.unit, b.received, b.stored) for b in made] == [
        (f"resubmit-{ids[0]}-{ids[2]}.zip", 3, 3),
        (f"resubmit-{ids[4]}-{ids[5]}.zip", 2, 2),
    ]
    closed = {q.id: q.resubmit_batch_id for q in entries(decl, "resubmitted")}
    assert closed == {i: made[0].id for i in ids[:3]} | {i: made[1].id for i in ids[4:]}
    stored = sorted(r["locator"] for r in rows(decl, "std.declarations"))
    assert f"resubmit-{ids[4]}-{ids[5]}.zip!push-7#resubmit-{ids[4]}:line 2" in stored
    with session_scope(decl.resolved_ops_db_url) as s:
        each = [e for e in list_entries(s, action="quarantine.resubmit") if not e.details.get("bulk")]
    ok = [e for e in each if e.outcome == "ok"]
    assert len(ok) == 5 and {e.details["entries_in_batch"] for e in ok} == {3, 2}
    assert {e.details["resubmit_batch_id"] for e in ok} == {b.id for b in made}


def test_a_bundle_whose_batch_fails_runs_each_entry_alone(decl: Settings) -> None:
    Runner(decl).ingest_bytes(decl_connector(decl), lost_zero(3, "T"), "t.csv")
    typo = {**ITEMS, "fields": {**ITEMS["fields"], "container_id": "containr"}}
    write_connector(decl, {**DECL_CONNECTOR, "outputs": [DECL_CONNECTOR["outputs"][0], typo]})
    ids = [q.id for q in entries(decl)]
    done = resubmit_selection(decl, Selection(connector="decl"), "engineer")
    assert (done.selected, done.resubmitted, done.still_open) == (3, 0, 3)
    [why] = done.reasons
    assert (why.code, why.ids) == ("batch_failed", ids)
    assert why.why.startswith("t.csv#resubmit-ID: the header has no column 'containr'")  # names the entry
    [bundle] = batches(decl, BUNDLE)
    assert bundle.status == "failed" and len(batches(decl, "resubmit")) == 3  # then each alone
    assert [q.id for q in entries(decl)] == ids  # nothing lost: all still open


def test_a_bundle_committed_before_its_entries_were_closed_closes_them(decl: Settings) -> None:
    """A run stopped between the bundle's commit and the closing of its entries: the next run makes
    the same bundle, finds its batch committed, and closes the entries by it (nothing stored twice)."""
    Runner(decl).ingest_bytes(decl_connector(decl), lost_zero(4, "C"), "c.csv")
    write_connector(decl, FIXED)
    found = [Entry(q.id, q.connector, q.batch_id, q.locator, q.raw or "") for q in entries(decl)]
    data = bundle_bytes(found)
    assert bundle_bytes(found) == data  # the same entries make the same bytes
    first = Runner(decl).ingest_bytes(
        load_connector(decl, "decl"),
        data,
        f"resubmit-{found[0].id}-{found[-1].id}.zip",
        transport=BUNDLE,
        fingerprint=bundle_fingerprint([e.id for e in found], data),
    )
    assert (first.status, first.stored) == ("committed", 4)

    done = resubmit_selection(decl, Selection(connector="decl"), "engineer")
    assert (done.resubmitted, done.stored, done.still_open) == (4, 0, 0)
    assert {q.resubmit_batch_id for q in entries(decl, "resubmitted")} == {first.batch_id}
    assert len(rows(decl, "std.declarations")) == 4 and len(batches(decl, BUNDLE)) == 1


def edifact_interchange(n: int) -> bytes:
    """The CUSDEC fixture's message ``n`` times in one interchange, each its own declaration."""
    text = EDIFACT.read_text(encoding="utf-8")
    head, body = text[: text.index("UNH+")], text[text.index("UNH+") : text.index("UNZ+")]
    messages = [
        body.replace("UNH+1+", f"UNH+{i}+")
        .replace("UNT+49+1'", f"UNT+49+{i}'")
        .replace("TW26KH0000123", f"TW26KH000012{i}")
        for i in range(1, n + 1)
    ]
    return (head + "".join(messages) + f"UNZ+{n}+CD00000451'\n").encode()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_edifact_messages_of_one_interchange_come_back_in_one_batch(
    request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path, backend: str
) -> None:
    """Record-style units: three CUSDEC messages quarantined because the HS code list lacked their
    subheading; once the list is corrected one is re-submitted alone, the other two in one batch."""
    lists = tmp_path / "codelists"
    shutil.copytree(shared_data / "codelists", lists)
    hs = lists / "hs" / "harmonized-system.csv"
    with hs.open(encoding="utf-8", newline="") as fh:
        kept = [r for r in csv.reader(fh) if r[1] != "851713"]
    with hs.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(kept)
    extra = {}
    if backend == "postgres":
        url = request.getfixturevalue("pg_database")
        extra = {"catalog_uri": url, "ops_db_url": url}
    (tmp_path / "instance").mkdir()
    settings = make_settings(tmp_path / "instance", codelists_dir=lists, **extra)
    migrate(settings.resolved_ops_db_url)
    codelists.cache_clear()
    _load.cache_clear()
    try:
        first = Runner(settings).ingest_bytes(
            load_connector(settings, "edifact-cusdec"), edifact_interchange(3), "cusdec-0312.edi"
        )
        assert (first.received, first.stored, first.quarantined) == (3, 0, 3)
        ids = [q.id for q in entries(settings)]
        assert list(plan(settings, ids)) == [ids]

        shutil.copyfile(shared_data / "codelists" / "hs" / "harmonized-system.csv", hs)
        codelists.cache_clear()
        _load.cache_clear()
        # a message's text is its own interchange (UNA, UNB, the message, UNZ): it runs again
        # as it stands, alone as in a bundle
        alone = resubmit(settings, ids[0], None, user="engineer")
        assert (alone.received, alone.stored, alone.quarantined) == (1, 1, 0)
        done = resubmit_selection(settings, Selection(connector="edifact-cusdec"), "engineer")
    finally:
        codelists.cache_clear()
        _load.cache_clear()
    assert (done.selected, done.resubmitted, done.stored, done.still_open) == (2, 2, 2, 0)
    [bundle] = batches(settings, BUNDLE)
    assert (bundle.unit, bundle.received, bundle.stored, bundle.quarantined) == (
        f"resubmit-{ids[1]}-{ids[2]}.zip",
        2,
        2,
        0,
    )
    stored = rows(settings, "std.declarations")
    assert sorted(r["declaration_id"] for r in stored) == [f"TW26KH000012{i}" for i in (1, 2, 3)]
    assert len(rows(settings, "std.declaration_items")) == 6
    assert not list_quarantine(settings, status="open")


def zipped(*members: tuple[str, str]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, text in members:
            archive.writestr(name, text)
    return sink.getvalue()


def test_members_of_one_zip_holding_one_record_store_it_once(decl: Settings) -> None:
    """A record is stored once within a batch too, across its parts: before 0120 two members of
    one zip (two entries of one bundle) holding one record both stored it."""
    connector = decl_connector(decl)
    row = "Z-1,2024-07-01,KRPUS,{},USD,851713,"
    other = Runner(decl).ingest_bytes(
        connector,
        zipped(("a.csv", f"{HEADER}\n{row.format(1)}\n"), ("b.csv", f"{HEADER}\n{row.format(2)}\n")),
        "other.zip",
    )
    assert (other.received, other.stored, other.quarantined) == (2, 1, 1)
    [entry] = list_quarantine(decl)
    assert entry["locator"] == "other.zip!b.csv:line 2"
    assert (
        "appears twice in this batch with different values: the copy at other.zip!a.csv:line 2"
        in (entry["reason"])
    )
    again = f"{HEADER}\n{row.format(5).replace('Z-1', 'Z-2')}\n"
    same = Runner(decl).ingest_bytes(connector, zipped(("c.csv", again), ("d.csv", again)), "same.zip")
    assert (same.received, same.stored, same.quarantined, same.already_stored) == (2, 1, 0, 1)
    assert sorted(r["declaration_id"] for r in rows(decl, "std.declarations")) == ["Z-1", "Z-2"]


def test_many_small_parts_leave_one_file_per_table(decl: Settings) -> None:
    """The files a batch's parts write are merged when small: later parts read the batch's rows in
    one file, and the lake gets one file for the batch, not one per member."""
    members = [(f"m{n:02}.csv", f"{HEADER}\nM-{n},2024-07-01,KRPUS,{n + 1},USD,851713,\n") for n in range(40)]
    done = Runner(decl).ingest_bytes(decl_connector(decl), zipped(*members), "many.zip")
    assert (done.received, done.stored, done.quarantined) == (40, 40, 0)
    lake = open_lake(decl.resolved_catalog_uri, decl.resolved_warehouse)
    for ident, n in (("std.declarations", 40), ("std.declaration_items", 40)):
        table = lake.table(ident)
        files = snapshot_files(table, table.current_snapshot()).paths
        assert len(files) == 1, files
        assert len(rows(decl, ident)) == n
    found = rows(decl, "std.declarations")
    assert {r["locator"] for r in found} == {f"many.zip!m{n:02}.csv:line 2" for n in range(40)}
