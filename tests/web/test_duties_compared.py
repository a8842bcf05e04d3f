"""The record page's duties per goods item: what a real declaration states beside what customs
assessed in a response, read from the lake as the page reads it (decision 0122)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sciti.acquire import Runner, load_connector
from sciti.web.views.risk import compare_duties
from tests.acquire.conftest import rows
from tests.acquire.test_wco_response import FIRST

DECLARED = "TT_IM050a__TT_IM050a.xml"  # one item; it states the customs duty (A00) only, 400 GBP
LRN = "U.78675239HLAR"


def test_a_real_declaration_beside_the_duties_customs_assessed(settings, shared_data: Path, tmp_path):
    samples = shared_data / "wco" / "samples"
    response = (samples / FIRST).read_bytes().replace(b"TT_IM17b_190721_01", LRN.encode())
    (tmp_path / DECLARED).write_bytes((samples / DECLARED).read_bytes())
    (tmp_path / "response.xml").write_bytes(response)
    connector = load_connector(settings, "wco-dec")
    for name in (DECLARED, "response.xml"):
        [result] = Runner(settings).ingest_path(connector, tmp_path / name)
        assert (result.status, result.stored) == ("committed", 1), result
    [declaration] = rows(settings, "std.declarations")
    assert declaration["declaration_id"] == LRN
    items = rows(settings, "std.declaration_items")
    assert {i["parent_record_id"] for i in items} == {declaration["record_id"]}
    lines = rows(settings, "std.customs_response_duties")
    compared = compare_duties(lines, items)
    assert compared == [
        # The response assessed duty (200) and VAT (2,040) on item 1; the declaration states 400.
        {
            "item_number": 1,
            "declared_duty": Decimal("400"),
            "assessed_duty": Decimal("2240"),
            "duty_difference": Decimal("1840"),
            "currency": "GBP",
        },
        # Item 2 is in the response only: nothing declared to compare.
        {
            "item_number": 2,
            "declared_duty": None,
            "assessed_duty": Decimal("22.40"),
            "duty_difference": None,
            "currency": "GBP",
        },
    ]


def test_nothing_to_compare_when_no_item_states_a_duty():
    line = {"item_number": 1, "assessed_amount": Decimal("5"), "currency": "GBP"}
    assert compare_duties([line], [{"item_number": 1, "duty_amount": None}]) is None


def test_lines_in_two_currencies_or_without_an_amount_give_no_sum():
    items = [{"item_number": 1, "duty_amount": Decimal("5")}, {"item_number": 2, "duty_amount": Decimal("5")}]
    lines = [
        {"item_number": 1, "assessed_amount": Decimal("5"), "currency": "GBP"},
        {"item_number": 1, "assessed_amount": Decimal("1"), "currency": "EUR"},
        {"item_number": 2, "assessed_amount": None, "currency": "GBP"},
    ]
    compared = compare_duties(lines, items)
    assert compared is not None
    assert [(c["assessed_duty"], c["duty_difference"]) for c in compared] == [(None, None), (None, None)]
