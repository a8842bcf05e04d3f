"""WCO RES customs responses (DMS notifications) stored by the wco-dec connector (decision 0122).

The five real tax-calculation notifications (DMSTAX) among the shared WCO samples are mapped to
``customs_response`` and ``customs_response_duty``; broken and hostile ones are quarantined with a
reason; a response links an original declaration stored under its LRN with its amendments, which
customs keys by the MRN.
"""

from __future__ import annotations

import types
from decimal import Decimal
from pathlib import Path

import pytest

from sciti.access import open_query
from sciti.acquire import BatchResult, Runner, load_connector
from sciti.acquire.formats import wco_xml
from sciti.acquire.items import Parsed, Rejected
from sciti.lake import open_lake
from sciti.settings import Settings
from tests.access.test_policy import principal
from tests.acquire.conftest import rows

RESPONSES = (
    "TT_IM017b__02._DMSTAX_1_.xml",
    "TT_IM017b__06._DMSTAX_2_.xml",
    "TT_IM017b__07._DMSTAX_3_.xml",
    "TT_IM065a__3._DMSTAX_2_.xml",
    "TT_IM065a__5._DMSTAX_3_.xml",
)
FIRST = RESPONSES[0]
ORIGINAL = "TT_IM002b__TT_IM002a.xml"  # lodged under its LRN, before customs gave the MRN
AMENDMENT = "TT_IM002b__TT_IM002b_Amendment.xml"  # keyed by the MRN
LRN, MRN = "TT_IM02a_EIDR_1511_004", "20GB32VVZI0YMFGVR0"
KINDS = ["declaration", "declaration_item", "declaration_party", "customs_response", "customs_response_duty"]


@pytest.fixture
def sample(shared_data: Path):
    return lambda name: (shared_data / "wco" / "samples" / name).read_bytes()


@pytest.fixture
def ctx(settings):
    return types.SimpleNamespace(settings=settings, connector=types.SimpleNamespace(kinds=KINDS))


def read(data: bytes, ctx, unit: str = "res.xml") -> list[Parsed | Rejected]:
    return list(wco_xml.read(data, unit=unit, options={}, ctx=ctx))


def test_a_real_tax_calculation_is_mapped(sample, ctx):
    [parsed] = read(sample(FIRST), ctx)
    assert isinstance(parsed, Parsed) and parsed.locator == "res.xml#/Response"
    [head] = parsed.records["customs_response"]
    assert head == {
        "response_id": "9cb5aec4162a402cb1045b6a31fefd6a",
        "declaration_id": "21GB7X9245J99OX4R0",
        "lrn": "TT_IM17b_190721_01",
        "declaration_version": "1",
        "function_code": "13",
        "status_code": "67",
        "issue_datetime": "2021-07-19T15:07:56Z",
        "duty_tax_total": "2262.40",
        "payment_total": "2262.40",
        "currency": "GBP",
        "duty_line_count": "4",
    }
    lines = parsed.records["customs_response_duty"]
    assert [(x["item_number"], x["line_number"], x["tax_type"], x["assessed_amount"]) for x in lines] == [
        ("1", "1", "A00", "200.00"),
        ("1", "2", "B00", "2040.00"),
        ("2", "1", "A00", "2.00"),
        ("2", "2", "B00", "20.40"),
    ]
    assert lines[0]["tax_base"] == "10000.00" and lines[0]["tax_rate"] == "2.00"
    assert "CITIGB2LLON" in parsed.raw, "the whole message is kept, bank details included"


@pytest.mark.parametrize("name", RESPONSES)
def test_every_real_response_totals_its_lines(sample, ctx, name):
    [parsed] = read(sample(name), ctx, unit=name)
    [head] = parsed.records["customs_response"]
    lines = parsed.records["customs_response_duty"]
    assert int(head["duty_line_count"]) == len(lines) > 0
    assert Decimal(head["duty_tax_total"]) == sum(Decimal(x["assessed_amount"]) for x in lines)
    assert {x["declaration_id"] for x in lines} == {head["declaration_id"]}


def test_a_connector_without_the_kinds_refuses_responses_and_says_how(sample, ctx):
    ctx.connector.kinds = KINDS[:3]
    [rejected] = read(sample(FIRST), ctx)
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("not a WCO declaration: this is a customs response")
    assert "add customs_response and customs_response_duty to its kinds" in rejected.reason


def _edit(data: bytes, old: str, new: str) -> bytes:
    assert old.encode() in data
    return data.replace(old.encode(), new.encode(), 1)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        (
            "<ID>21GB7X9245J99OX4R0</ID>",
            "",
            "Declaration/ID",
            "names no declaration MRN (Declaration/ID), so it cannot be linked",
        ),
        (
            "<FunctionalReferenceID>9cb5aec4162a402cb1045b6a31fefd6a</FunctionalReferenceID>",
            "<FunctionalReferenceID> </FunctionalReferenceID>",
            "FunctionalReferenceID",
            "has no FunctionalReferenceID, its identifier",
        ),
    ],
)
def test_a_response_without_its_references_is_refused(sample, ctx, old, new, field, words):
    [rejected] = read(_edit(sample(FIRST), old, new), ctx)
    assert isinstance(rejected, Rejected) and rejected.field == field
    assert words in rejected.reason and rejected.raw


def test_totals_over_several_currencies_are_left_empty(sample, ctx):
    gbp = 'currencyID="GBP">20.40</TaxAssessedAmount>'
    data = _edit(sample(FIRST), gbp, gbp.replace("GBP", "EUR"))
    [parsed] = read(data, ctx)
    [head] = parsed.records["customs_response"]
    assert head["duty_tax_total"] is head["payment_total"] is head["currency"] is None
    assert parsed.records["customs_response_duty"][3]["currency"] == "EUR"


def test_an_envelope_with_two_namespaced_responses_gives_both(sample, ctx):
    body = sample(FIRST).decode().split("?>", 1)[-1].strip()
    ns = body.replace("<MetaData>", '<MetaData xmlns="urn:wco:datamodel:WCO:DocumentMetaData-DMS:2">', 1)
    second = body.replace("9cb5aec4162a402cb1045b6a31fefd6a", "another-response")
    envelope = f"<notifications>{ns}{second}</notifications>".encode()
    found = read(envelope, ctx, unit="two.xml")
    assert [p.locator for p in found] == ["two.xml#/Response[1]", "two.xml#/Response[2]"]
    assert [p.records["customs_response"][0]["response_id"] for p in found] == [
        "9cb5aec4162a402cb1045b6a31fefd6a",
        "another-response",
    ]


def test_hostile_and_truncated_responses_are_refused(sample, ctx):
    data = sample(FIRST)
    dtd = b'<?xml version="1.0"?><!DOCTYPE MetaData [<!ENTITY a "aaaa">]>' + data.split(b"?>", 1)[-1]
    for bad, words in ((data[: len(data) // 2], "the file is truncated"), (dtd, "declares a DTD")):
        [rejected] = read(bad, ctx)
        assert isinstance(rejected, Rejected) and words in rejected.reason


# --- through the runner, with the shipped connector ------------------------------------------------


def ingest(settings: Settings, folder: Path, name: str, data: bytes) -> BatchResult:
    (folder / name).write_bytes(data)
    [result] = Runner(settings).ingest_path(load_connector(settings, "wco-dec"), folder / name)
    assert result.status == "committed", result
    assert result.received == result.stored + result.quarantined + result.already_stored
    return result


def test_real_responses_are_stored_once_and_bad_ones_quarantined(settings, sample, tmp_path):
    for name in RESPONSES:
        assert ingest(settings, tmp_path, name, sample(name)).stored == 1
    heads = rows(settings, "std.customs_responses")
    lines = rows(settings, "std.customs_response_duties")
    assert len(heads) == 5 and len(lines) == 14
    by_record = {h["record_id"]: h for h in heads}
    assert all(by_record[x["parent_record_id"]]["response_id"] == x["response_id"] for x in lines)
    assert {h["declaration_id"]: h["lrn"] for h in heads} == {
        "21GB7X9245J99OX4R0": "TT_IM17b_190721_01",
        "21GB5S3RI7TMMX8YR9": "R310_NIP_TC15_2605_04",
    }
    # Sent again with other line ends: already stored, nothing new.
    again = ingest(settings, tmp_path, "again.xml", sample(FIRST).replace(b"\n", b"\r\n"))
    assert (again.stored, again.already_stored) == (0, 1)
    # A negative amount is the model's to refuse: the unit is quarantined whole, naming the field.
    bad = _edit(sample(RESPONSES[3]), ">81.20</TaxAssessedAmount>", ">-81.20</TaxAssessedAmount>")
    bad = bad.replace(b"c9ab2ecfd5cf4240a7dfe74cad43b09f", b"other-response")
    result = ingest(settings, tmp_path, "negative.xml", bad)
    assert (result.stored, result.quarantined) == (0, 1)
    assert len(rows(settings, "std.customs_responses")) == 5


LINKED = """
WITH refs AS (SELECT DISTINCT declaration_id AS mrn, lrn FROM std.customs_responses WHERE lrn IS NOT NULL)
SELECT coalesce(refs.mrn, d.declaration_id) AS mrn, d.declaration_id AS stored_as, d.version, d.function_code
FROM std.declarations d LEFT JOIN refs ON d.declaration_id = refs.lrn
WHERE coalesce(refs.mrn, d.declaration_id) = '20GB32VVZI0YMFGVR0'
ORDER BY d.version
"""


def test_a_response_links_the_original_under_its_lrn_with_its_amendments(settings, sample, tmp_path):
    """The real original of scenario IM002b is stored under its LRN, its real amendment under the
    MRN; customs' response (a real DMSTAX notification, given this declaration's references) links them."""
    ingest(settings, tmp_path, ORIGINAL, sample(ORIGINAL))
    ingest(settings, tmp_path, AMENDMENT, sample(AMENDMENT))
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    analyst = principal("analyst")

    def linked() -> list[dict]:
        return open_query(lake, analyst, LINKED).reader.read_all().to_pylist()

    stored = sorted((r["declaration_id"], r["version"]) for r in rows(settings, "std.declarations"))
    assert stored == [(MRN, 2), (LRN, 1)]  # two keys: nothing in the declarations says they are one
    response = sample(FIRST).replace(b"TT_IM17b_190721_01", LRN.encode())
    response = response.replace(b"21GB7X9245J99OX4R0", MRN.encode())
    assert ingest(settings, tmp_path, "response.xml", response).stored == 1
    assert linked() == [
        {"mrn": MRN, "stored_as": LRN, "version": 1, "function_code": "9"},
        {"mrn": MRN, "stored_as": MRN, "version": 2, "function_code": "5"},
    ]


def test_a_quarantined_response_corrected_and_resubmitted_is_stored(settings, sample, tmp_path):
    from sqlalchemy import select

    from sciti.acquire import resubmit
    from sciti.ops import QuarantineRecord, session_scope

    good = sample(FIRST)
    broken = _edit(good, "<ID>21GB7X9245J99OX4R0</ID>", "")
    assert ingest(settings, tmp_path, "res.xml", broken).quarantined == 1
    with session_scope(settings.resolved_ops_db_url) as s:
        entry = s.scalars(select(QuarantineRecord)).one()
        entry_id, locator, field, raw = entry.id, entry.locator, entry.field, entry.raw
    assert locator == "res.xml#/Response" and field == "Declaration/ID"
    assert raw == broken.decode("utf-8"), "the whole message is kept to correct"
    result = resubmit(settings, entry_id, good.decode("utf-8"), user="tester")
    assert (result.status, result.stored) == ("committed", 1)
    assert [r["declaration_id"] for r in rows(settings, "std.customs_responses")] == ["21GB7X9245J99OX4R0"]
    with session_scope(settings.resolved_ops_db_url) as s:
        assert s.get(QuarantineRecord, entry_id).status == "resubmitted"
