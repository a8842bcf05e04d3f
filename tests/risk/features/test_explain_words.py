"""The `explain` templates of features.yaml: rates read as estimates, counts and unit values clearly."""

from __future__ import annotations

import pytest

from sciti.risk.features import columns
from sciti.risk.features.catalog import SUBJECT_KINDS
from sciti.risk.models.scoring import describe


def rate_features() -> list[tuple[str, str]]:
    return [
        (kind, info.name)
        for kind in SUBJECT_KINDS
        for info in columns(kind).values()
        if info.derived and info.description.startswith("Smoothed share")
    ]


@pytest.mark.parametrize(("kind", "name"), rate_features())
def test_a_smoothed_rate_is_worded_as_an_estimate_not_a_share(kind: str, name: str) -> None:
    info = columns(kind)[name]
    # "({evidence})": the counts behind the estimate (test_rate_evidence.py, decision 0115)
    assert info.explain and "estimated" in info.explain and "({evidence})" in info.explain
    assert "% of past inspections" not in info.explain and "at a rate of" not in info.explain
    assert info.explain_unseen and "assumed" in info.explain_unseen  # never inspected: said so


def test_rate_words_do_not_claim_an_observed_share() -> None:
    row = {"importer_exporter_risk": 0.2220, "importer_id": "SHHZGSL", "exporter_id": "249LO7A"}
    text = describe("declaration", "importer_exporter_risk", row, 0.3)
    assert text.startswith("Importer SHHZGSL buying from 249LO7A: estimated fraud rate 22% (")
    row = {"hs_origin_critical_rate": 0.208, "hs6": "621710", "country_of_origin": "FR"}
    text = describe("declaration", "hs_origin_critical_rate", row, 7.09)
    assert text.startswith("HS 621710 from FR: estimated critical-fraud rate 20.8% (")


def test_counts_have_thousands_separators_and_unit_values_a_currency() -> None:
    row = {"trader_declarations_365d": 3643.0, "importer_id": "74924311"}
    assert describe("declaration", "trader_declarations_365d", row, 0.1).startswith(
        "Importer 74924311 lodged 3,643 declarations in the past year"
    )
    row = {"hs_declarations": 12500.0, "hs6": "851712"}
    assert "12,500 past goods items" in describe("declaration", "hs_declarations", row, 0.1)
    text = describe("declaration", "unit_value", {"unit_value": 1581.92, "currency": "USD"}, 0.1)
    assert text.startswith(
        "Declared unit value is 1,581.92 per kg (customs value in HKD, or the item price where"
    )
    assert text.endswith("no customs value is declared; item currency: USD) (contributes +0.10)"), text
    # KCS declarations name no currency: the words say so, never "None" or a blank.
    text = describe("declaration", "unit_value", {"unit_value": 1581.92, "currency": None}, 0.1)
    assert "no customs value is declared; item currency: unknown)" in text
    for kind in SUBJECT_KINDS:
        for info in columns(kind).values():
            if info.derived and info.explain and "{value:.0f}" in info.explain:
                assert info.name == "unknown_code_count", info.name  # counts: {value:,.0f}
    ratio = describe("currency_declaration", "threshold_ratio", {"threshold_ratio": 0.95}, 0.1)
    assert ratio.startswith("Amount is 95% of the reporting threshold (HKD 120,000)")


@pytest.mark.parametrize("courier", [None, "", "  "])
def test_a_blank_key_reads_unknown(courier) -> None:
    """KCS declarations that came by no express courier have it blank: the words never show a gap."""
    row = {"courier_hit_rate": 0.22, "courier_id": courier}
    text = describe("declaration", "courier_hit_rate", row, 0.1, fallback=0.22)
    assert text.startswith("Courier unknown has no past inspections"), text
