"""columns(kind): every name a rule or model may use, typed and described."""

from __future__ import annotations

import pytest

from sciti.model import get_kind
from sciti.risk.errors import FeatureError
from sciti.risk.features import SUBJECT_KINDS, columns, feature_names

CONTRACT_DECLARATION = {
    "unit_value",
    "unit_value_ratio",
    "unit_value_band_z",
    "hs6",
    "hs_chapter",
    "trader_declarations_365d",
    "trader_inspections",
    "trader_hit_rate",
    "trader_first_time",
    "declarant_hit_rate",
    "declarant_declarations_365d",
    "route_transhipment",
    "origin_differs_dispatch",
    "aeo",
    "aeo_partner_mra",
    "watchlist_hit",
    "hs_risk",
    "origin_risk",
    "unknown_codes",
}


@pytest.mark.parametrize("kind", SUBJECT_KINDS)
def test_every_column_is_typed_and_described(kind: str) -> None:
    cols = columns(kind)
    assert "record_id" in cols and "record_date" in cols and "unknown_codes" in cols
    for name, info in cols.items():
        assert info.name == name and info.type in {"number", "text", "bool", "date"}, info
        assert len(info.description) > 10, name
        if info.derived:
            assert info.explain, f"{kind}.{name} has no explanation template"
    assert set(feature_names(kind)) <= set(cols)


def test_declaration_has_header_item_and_contract_features() -> None:
    cols = columns("declaration")
    assert set(cols) >= CONTRACT_DECLARATION
    assert {"office_code", "importer_id", "hs_code", "item_price", "net_mass_kg", "item_number"} <= set(cols)
    assert "declaration_version" not in cols  # the item's link to its header is not a subject field
    # Item fields keep their canonical names and win over the header's (same meaning, item level).
    assert (
        cols["customs_value"].description == get_kind("declaration_item").field("customs_value").description
    )
    assert cols["unit_value_ratio"].type == "number" and cols["aeo"].type == "bool"


def test_currency_declarations_have_structuring_indicators() -> None:
    assert {"threshold_ratio", "just_below_threshold", "person_near_threshold_90d"} <= set(
        columns("currency_declaration")
    )


def test_a_kind_without_risk_scope_is_refused_with_the_valid_kinds() -> None:
    with pytest.raises(FeatureError, match="no risk scope") as err:
        columns("seizure")
    assert "declaration" in (err.value.remedy or "")
