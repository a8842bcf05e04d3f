"""A part of a file of several (declarations or customs responses in one envelope) is quarantined as
its own document, so it is corrected and re-submitted alone (decision 0124).

Before, each bad part's entry held the whole file: re-submitting it as quarantined was refused
(it holds more than one record), and a file of a thousand parts was kept once per bad part.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select, update

from sciti.acquire import Runner, load_connector, resubmit
from sciti.acquire.formats import wco_xml
from sciti.acquire.quarantine import CorrectionMismatch
from sciti.acquire.quarantine_bulk import Selection
from sciti.acquire.quarantine_bundle import plan
from sciti.acquire.quarantine_resubmit import resubmit_selection
from sciti.ops import Batch, QuarantineRecord, session_scope
from sciti.settings import Settings
from tests.acquire.conftest import rows
from tests.acquire.test_wco_response import FIRST, _edit
from tests.acquire.test_wco_xml import ENVELOPE_SAMPLE

SECOND_ID = "U.SECOND"


@pytest.fixture
def sample(shared_data: Path):
    return lambda name: (shared_data / "wco" / "samples" / name).read_bytes()


def two_declarations(sample, second_edit: tuple[str, str] | None = None) -> bytes:
    """The real envelope sample with a copy of its declaration (another LRN) after the first."""
    env = sample(ENVELOPE_SAMPLE)
    start, end = env.index(b"<md:MetaData"), env.index(b"</md:MetaData>") + len(b"</md:MetaData>")
    second = env[start:end].replace(b"U.7867523J8Q2D", SECOND_ID.encode())
    if second_edit is not None:
        second = _edit(second, *second_edit)
    return env[:end] + b"\n" + second + env[end:]


def three_responses(sample, edit: tuple[str, str] | None = None) -> bytes:
    body = sample(FIRST).decode().split("?>", 1)[-1].strip()
    if edit is not None:
        body = _edit(body.encode(), *edit).decode()
    parts = [body.replace("9cb5aec4162a402cb1045b6a31fefd6a", f"response-{n}") for n in (1, 2, 3)]
    return ("<notifications>" + "\n".join(parts) + "</notifications>").encode()


def ingest(settings: Settings, folder: Path, name: str, data: bytes):
    (folder / name).write_bytes(data)
    [result] = Runner(settings).ingest_path(load_connector(settings, "wco-dec"), folder / name)
    assert result.status == "committed", result
    assert result.received == result.stored + result.quarantined + result.already_stored
    return result


def open_entries(settings: Settings) -> list[QuarantineRecord]:
    with session_scope(settings.resolved_ops_db_url) as s:
        query = select(QuarantineRecord).where(QuarantineRecord.status == "open")
        return list(s.scalars(query.order_by(QuarantineRecord.id)))


BAD_CURRENCY = ('currencyID="GBP"', 'currencyID="XXXX"')


def test_a_bad_declaration_of_an_envelope_is_kept_alone_and_comes_in_corrected(settings, sample, tmp_path):
    data = two_declarations(sample, BAD_CURRENCY)
    result = ingest(settings, tmp_path, "env.xml", data)
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    [entry] = open_entries(settings)
    assert entry.locator.startswith("env.xml#/Declaration/") and ":line " in entry.locator
    file_line = int(entry.locator.rsplit(":line ", 1)[1])
    starts = data[: data.index(b"<md:MetaData", data.index(b"</md:MetaData>"))].count(b"\n") + 1
    assert f"declaration 2 of 2 in the file, from its line {starts}" in entry.reason, entry.reason
    assert f"line {file_line}," in entry.reason, "the reason's line is the file's, as the locator's"
    # The entry is the second declaration alone, a document of its own with its namespaces.
    root = etree.fromstring(entry.raw.encode())
    assert etree.QName(root).localname == "MetaData"
    assert SECOND_ID in entry.raw and "U.7867523J8Q2D" not in entry.raw
    assert len(entry.raw) < len(data) / 1.9
    # As quarantined it fails again, alone; corrected it comes in.
    fixed = entry.raw.replace('currencyID="XXXX"', 'currencyID="GBP"')
    done = resubmit(settings, entry.id, fixed, user="engineer")
    assert (done.status, done.stored, done.quarantined) == ("committed", 1, 0)
    assert {r["declaration_id"] for r in rows(settings, "std.declarations")} == {"U.7867523J8Q2D", SECOND_ID}
    assert open_entries(settings) == []


def test_an_entry_kept_with_its_whole_file_says_so_when_resubmitted(settings, sample, tmp_path):
    """Entries quarantined before this decision hold the whole file: the refusal says so, and a
    correction holding the one declaration comes in."""
    data = two_declarations(sample, BAD_CURRENCY)
    ingest(settings, tmp_path, "env.xml", data)
    [entry] = open_entries(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        s.execute(update(QuarantineRecord).values(raw=data.decode()))
    with pytest.raises(CorrectionMismatch) as refused:
        resubmit(settings, entry.id, None, user="engineer")
    assert "its text is the whole file it came in, with 2 records" in str(refused.value)
    assert "a correction that holds only this declaration" in refused.value.remedy
    assert open_entries(settings)[0].status == "open"
    second = wco_xml.part_text(wco_xml.find_declarations(etree.fromstring(data))[1][0])
    fixed = second.replace('currencyID="XXXX"', 'currencyID="GBP"')
    done = resubmit(settings, entry.id, fixed, user="engineer")
    assert (done.stored, done.quarantined) == (1, 0)


def test_a_declaration_the_mapping_refuses_in_an_envelope_is_kept_alone(settings, sample, tmp_path):
    """Refused after the schema (no ID nor LRN): the entry is still that declaration alone."""
    data = two_declarations(sample, (f"<FunctionalReferenceID>{SECOND_ID}</FunctionalReferenceID>", ""))
    result = ingest(settings, tmp_path, "env.xml", data)
    assert (result.stored, result.quarantined) == (1, 1)
    [entry] = open_entries(settings)
    assert entry.locator == "env.xml#/Declaration[2]"
    assert len(wco_xml.find_declarations(etree.fromstring(entry.raw.encode()))) == 1
    assert "U.7867523J8Q2D" not in entry.raw


def test_responses_of_an_envelope_are_kept_alone_and_resubmitted_as_one_bundle(settings, sample, tmp_path):
    negative = (">20.40</TaxAssessedAmount>", ">-20.40</TaxAssessedAmount>")
    result = ingest(settings, tmp_path, "notes.xml", three_responses(sample, negative))
    assert (result.received, result.stored, result.quarantined) == (3, 0, 3)
    found = open_entries(settings)
    assert [e.locator for e in found] == [f"notes.xml#/Response[{n}]" for n in (1, 2, 3)]
    for n, entry in enumerate(found, start=1):
        assert f"response-{n}" in entry.raw and entry.raw.count("<Response") == 1
    # One record each: the three go back as one bundle, one batch.
    assert list(plan(settings, [e.id for e in found])) == [[e.id for e in found]]
    done = resubmit_selection(settings, Selection(connector="wco-dec"), "engineer")
    assert done.resubmitted == 3
    with session_scope(settings.resolved_ops_db_url) as s:
        bundles = list(s.scalars(select(Batch).where(Batch.transport == "resubmit-bundle")))
    assert len(bundles) == 1 and bundles[0].quarantined == 3
    # Quarantined again, each still alone; corrected, one comes in.
    again = open_entries(settings)
    assert len(again) == 3 and all(e.raw.count("<Response") == 1 for e in again)
    fixed = again[1].raw.replace(">-20.40<", ">20.40<")
    assert resubmit(settings, again[1].id, fixed, user="engineer").stored == 1
    assert [r["response_id"] for r in rows(settings, "std.customs_responses")] == ["response-2"]
