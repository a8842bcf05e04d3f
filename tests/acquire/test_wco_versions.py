"""WCO DEC additional messages numbered from the declaration's stored history (decision 0114).

The real DMS samples hold two amendments of one MRN (25GB3POHWIVZSF9AR0) and an amendment and a
cancellation of another (24GBA4ZYBWXU1BSA00); they go through the shipped wco-dec connector, the
runner and the lake, as a data engineer's `sciti ingest` would.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from sciti.acquire import BatchResult, Runner, load_connector
from sciti.acquire.formats.wco_xml import declaration_digests
from sciti.model import get_kind
from sciti.ops import QuarantineRecord, session_scope
from sciti.settings import Settings
from tests.acquire.conftest import rows, write_connector
from tests.conftest import ROOT, make_settings

MRN = "25GB3POHWIVZSF9AR0"
AMEND_1 = "TT_IM082a__TT_IM002b_Amendment.xml"
AMEND_2 = "TT_IM082a__TT_IM002c_Complex_Multi_Amendment.xml"
ORIGINAL = "TT_IM082a__TT_IM002a.xml"  # lodged by LRN; given the MRN below for one test
CANCELLED_MRN = "24GBA4ZYBWXU1BSA00"
AMEND = "TT_IM011a__TT_IM011a_Amendment.xml"
CANCEL = "TT_IM011a__TT_IM011a_Cancellation.xml"


@pytest.fixture
def sample(shared_data: Path):
    def read(name: str) -> bytes:
        return (shared_data / "wco" / "samples" / name).read_bytes()

    return read


def resent(data: bytes) -> bytes:
    """The same message with other bytes: CRLF line ends and a comment, as another export makes it."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"<!-- sent again -->\r\n"


def ingest(
    settings: Settings, folder: Path, name: str, data: bytes, connector: str = "wco-dec"
) -> BatchResult:
    path = folder / name
    path.write_bytes(data)
    [result] = Runner(settings).ingest_path(load_connector(settings, connector), path)
    assert result.status == "committed", result
    assert result.received == result.stored + result.quarantined + result.already_stored
    return result


def versions(settings: Settings, mrn: str) -> list[tuple[int, str]]:
    """(version, function code) of the declaration's stored versions."""
    found = rows(settings, get_kind("declaration").ident)
    return sorted((r["version"], r["function_code"]) for r in found if r["declaration_id"] == mrn)


def quarantined(settings: Settings) -> list[tuple[str, str]]:
    with session_scope(settings.resolved_ops_db_url) as s:
        return [
            (q.locator, q.reason) for q in s.scalars(select(QuarantineRecord).order_by(QuarantineRecord.id))
        ]


def counts(result: BatchResult) -> tuple[int, int, int, int]:
    return result.received, result.stored, result.quarantined, result.already_stored


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either(request, tmp_path: Path) -> Settings:
    """An instance on SQLite, or with its catalog and operational database on PostgreSQL."""
    extra = {}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        extra = {"catalog_uri": url, "ops_db_url": url}
    return make_settings(tmp_path / "instance", **extra)


def test_two_real_amendments_are_versions_2_and_3(either, sample, tmp_path):
    settings = either
    assert counts(ingest(settings, tmp_path, AMEND_1, sample(AMEND_1))) == (1, 1, 0, 0)
    assert counts(ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))) == (1, 1, 0, 0)
    assert versions(settings, MRN) == [(2, "5"), (3, "5")]
    assert quarantined(settings) == []
    # The second amendment's party belongs to version 3, linked to that version's header.
    [head] = [r for r in rows(settings, "std.declarations") if r["version"] == 3]
    parties = [r for r in rows(settings, get_kind("declaration_party").ident) if r["declaration_id"] == MRN]
    assert [(p["declaration_version"], p["parent_record_id"]) for p in parties] == [(3, head["record_id"])]


def test_amendments_sent_again_are_already_stored(either, sample, tmp_path):
    settings = either
    ingest(settings, tmp_path, AMEND_1, sample(AMEND_1))
    ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))
    # Other bytes, other file names: the batches are new, the messages are not.
    assert counts(ingest(settings, tmp_path, "again-1.xml", resent(sample(AMEND_1)))) == (1, 0, 0, 1)
    assert counts(ingest(settings, tmp_path, "again-2.xml", resent(sample(AMEND_2)))) == (1, 0, 0, 1)
    assert versions(settings, MRN) == [(2, "5"), (3, "5")]
    assert quarantined(settings) == []


@pytest.mark.parametrize("one_batch", [False, True], ids=["two batches", "one zip"])
def test_a_cancellation_is_final_in_either_order(sample, tmp_path, one_batch):
    # Arrival order numbers them: a cancellation sent last outranks the amendment (version 3); an
    # amendment sent after it is refused, so the cancellation stays the last word.
    for order, stored in (([AMEND, CANCEL], [(2, "5"), (3, "13")]), ([CANCEL, AMEND], [(2, "13")])):
        folder = tmp_path / order[0][:-4]
        folder.mkdir()
        settings = make_settings(folder / "instance")
        if one_batch:
            with zipfile.ZipFile(folder / "dms.zip", "w") as archive:
                for name in order:
                    archive.writestr(name, sample(name))
            result = ingest(settings, folder, "dms.zip", (folder / "dms.zip").read_bytes())
            assert counts(result) == (2, len(stored), 2 - len(stored), 0)
        else:
            for name in order:
                ingest(settings, folder, name, sample(name))
        assert versions(settings, CANCELLED_MRN) == stored
        entries = quarantined(settings)
        if order[-1] == CANCEL:
            assert entries == []
            continue
        [(locator, reason)] = entries
        assert locator.endswith(f"{AMEND}#/Declaration")
        assert reason.startswith(f"declaration {CANCELLED_MRN} was cancelled (version 2, received 20")
        assert "UTC); an amendment after a cancellation is not accepted" in reason


def test_one_batch_with_two_amendments_and_a_copy(settings, sample, tmp_path):
    with zipfile.ZipFile(tmp_path / "dms.zip", "w") as archive:
        archive.writestr(AMEND_1, sample(AMEND_1))
        archive.writestr(AMEND_2, sample(AMEND_2))
        archive.writestr("copy-of-first.xml", resent(sample(AMEND_1)))
    result = ingest(settings, tmp_path, "dms.zip", (tmp_path / "dms.zip").read_bytes())
    assert counts(result) == (3, 2, 0, 1)
    assert versions(settings, MRN) == [(2, "5"), (3, "5")]
    by_version = {r["version"]: r["locator"] for r in rows(settings, "std.declarations")}
    assert by_version == {2: f"dms.zip!{AMEND_1}#/Declaration", 3: f"dms.zip!{AMEND_2}#/Declaration"}


def test_an_original_by_mrn_then_amendments(settings, sample, tmp_path):
    original = sample(ORIGINAL)
    lrn = b"<FunctionalReferenceID>U.78475764QX0M</FunctionalReferenceID>"
    assert lrn in original
    with_mrn = original.replace(lrn, lrn + f"<ID>{MRN}</ID>".encode(), 1)
    assert counts(ingest(settings, tmp_path, ORIGINAL, with_mrn)) == (1, 1, 0, 0)
    ingest(settings, tmp_path, AMEND_1, sample(AMEND_1))
    ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))
    assert versions(settings, MRN) == [(1, "9"), (2, "5"), (3, "5")]
    assert quarantined(settings) == []


@pytest.fixture
def old_and_new(acq_settings: Settings) -> Settings:
    """The shipped connector, and one of the same source numbering as before 0114 (fixed 2 and 3)."""
    shipped: dict[str, Any] = yaml.safe_load((ROOT / "connectors" / "wco-dec" / "connector.yaml").read_text())
    assert shipped["options"] == {"version_from_history": True}
    write_connector(acq_settings, shipped)
    write_connector(acq_settings, {**shipped, "name": "wco-old", "options": {}})
    return acq_settings


def test_versions_stored_under_the_fixed_numbering_are_kept(old_and_new, sample, tmp_path):
    settings = old_and_new
    ingest(settings, tmp_path, AMEND_1, sample(AMEND_1), connector="wco-old")  # version 2 then
    ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))
    assert counts(ingest(settings, tmp_path, "again-1.xml", resent(sample(AMEND_1)))) == (1, 0, 0, 1)
    assert versions(settings, MRN) == [(2, "5"), (3, "5")]
    # A cancellation stored as version 3 (the old rule) is final too.
    ingest(settings, tmp_path, CANCEL, sample(CANCEL), connector="wco-old")
    assert counts(ingest(settings, tmp_path, AMEND, sample(AMEND))) == (1, 0, 1, 0)
    assert versions(settings, CANCELLED_MRN) == [(3, "13")]
    [(_, reason)] = quarantined(settings)
    assert reason.startswith(f"declaration {CANCELLED_MRN} was cancelled (version 3, received ")


def test_the_message_digest_ignores_layout_but_not_content(sample):
    first, second = sample(AMEND_1), sample(AMEND_2)
    [digest] = declaration_digests(first, "a.xml").values()
    assert declaration_digests(resent(first), "b.xml") == {"b.xml#/Declaration": digest}
    assert declaration_digests(second, "a.xml")["a.xml#/Declaration"] != digest
    assert declaration_digests(b"<not closed", "a.xml") == {}


def test_the_history_reads_the_same_through_pyiceberg(settings, sample, tmp_path):
    """Files with deletes or in an object store are read through pyiceberg: the same rows."""
    from sciti.acquire.stored_keys import StoredIds, stored_ids
    from sciti.acquire.versions import stored_versions
    from sciti.lake import open_lake

    ingest(settings, tmp_path, AMEND_1, sample(AMEND_1))
    ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    ident = get_kind("declaration").ident
    local = stored_ids(lake, ident, "another batch")
    assert local is not None and local.table is None
    through = StoredIds(ident, "another batch", (), lake.table(ident))
    by_files = stored_versions(local, "wco-dec", [MRN, "no such MRN"])
    assert [r["version"] for r in by_files] in ([2, 3], [3, 2])
    assert sorted(by_files, key=str) == sorted(stored_versions(through, "wco-dec", [MRN]), key=str)
    assert stored_versions(local, "another source", [MRN]) == []


def test_a_second_amendment_quarantined_by_the_fixed_numbering_is_stored_when_resubmitted(
    acq_settings, sample, tmp_path
):
    from sciti.acquire import resubmit

    settings = acq_settings
    shipped: dict[str, Any] = yaml.safe_load((ROOT / "connectors" / "wco-dec" / "connector.yaml").read_text())
    write_connector(settings, {**shipped, "options": {}})  # the connector before 0114
    ingest(settings, tmp_path, AMEND_1, sample(AMEND_1))
    assert counts(ingest(settings, tmp_path, AMEND_2, sample(AMEND_2))) == (1, 0, 1, 0)
    [(_, reason)] = quarantined(settings)
    assert f"declaration {MRN} version 2 is already stored" in reason
    write_connector(settings, shipped)  # the upgrade
    with session_scope(settings.resolved_ops_db_url) as s:
        entry = s.scalars(select(QuarantineRecord)).one().id
    result = resubmit(settings, entry, None, user="tester")
    assert (result.status, counts(result)) == ("committed", (1, 1, 0, 0))
    assert versions(settings, MRN) == [(2, "5"), (3, "5")]


def test_the_option_on_a_format_without_messages_fails_the_batch_with_a_reason(acq_settings, tmp_path):
    settings = acq_settings
    connector = {"name": "lines", "source": "lines", "format": "jsonl", "kinds": ["declaration"]}
    write_connector(settings, {**connector, "options": {"version_from_history": True}})
    path = tmp_path / "d.jsonl"
    path.write_text('{"declaration_id": "D1", "version": 2}\n', encoding="utf-8")
    [result] = Runner(settings).ingest_path(load_connector(settings, "lines"), path)
    assert result.status == "failed"
    assert "option version_from_history is for message formats that carry amendments (wco-xml)" in (
        result.error or ""
    )
