"""The national currency and cash reporting threshold come from the settings (decision 0111): the
threshold features change alike in batch and real time, a saved reference says what it was built
for, and the words name the configured currency."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.lake import open_lake, query
from sciti.risk.errors import FeatureError
from sciti.risk.features import build_reference, compute_batch, compute_one, load_reference, save_reference
from sciti.risk.features.national import DEFAULT, National
from sciti.risk.models.scoring import describe
from sciti.settings import Settings
from tests.conftest import make_settings
from tests.risk.features.test_parity import assert_same

EUR = {"national_currency": "EUR", "cash_reporting_threshold": 10_000}
EUR_10000 = National("EUR", Decimal(10_000))
DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("declaration_number", pa.string()),
        ("declared_at", pa.timestamp("us", tz="UTC")),
        ("document_number", pa.string()),
        ("amount_national", pa.decimal128(18, 4)),
    ]
)
CASH = ("threshold_ratio", "just_below_threshold", "person_movements_90d", "person_near_threshold_90d")


def cash_rows(amounts: list[tuple[str, float]]) -> pa.Table:
    """One movement a day per (document number, amount), as std.currency_declarations holds them."""
    return pa.Table.from_pylist(
        [  # fmt: skip
            {
                "declaration_number": f"N{i}",
                "declared_at": DAY0 + timedelta(days=i),
                "document_number": doc,
                "amount_national": Decimal(str(amount)),
            }
            for i, (doc, amount) in enumerate(amounts)
        ],
        schema=SCHEMA,
    )


# Just below EUR 10,000 (E), just below HKD 120,000 (H), and neither (N): on the same records.
RECORDS = cash_rows([("E", 9_500.0)] * 3 + [("H", 110_000.0)] * 3 + [("N", 50_000.0)])


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Settings]:
    """Two instances over the same currency declarations: the default settings, and EUR 10,000."""
    out = {}
    for name, overrides in (("HKD", {}), ("EUR", EUR)):
        settings = make_settings(tmp_path_factory.mktemp(name), **overrides)
        lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
        lake.ensure_table("std.currency_declarations", RECORDS.schema)
        lake.append("std.currency_declarations", RECORDS)
        out[name] = settings
    return out


def _by_document(rows: list[dict]) -> dict[str, tuple]:
    return {r["document_number"]: tuple(r[n] for n in CASH) for r in rows}


def test_a_non_default_threshold_changes_batch_and_real_time_alike(homes) -> None:
    as_of = date(2026, 3, 31)
    live = cash_rows([("E", 9_600.0), ("H", 112_000.0), ("N", 5.0)])
    found = {}
    for name, settings in homes.items():
        ref = build_reference(settings, as_of=as_of)
        assert ref.national == National.of(settings)
        batch = compute_batch("currency_declaration", live, ref).to_pylist()
        single = [compute_one("currency_declaration", r, ref) for r in live.to_pylist()]
        assert_same(batch, single, list(CASH))
        # Point in time (training, dry-runs) reads the same threshold from the same reference.
        pit = compute_batch("currency_declaration", RECORDS, ref, point_in_time=True).to_pylist()
        found[name] = (_by_document(batch), pit)
    hkd, eur = found["HKD"][0], found["EUR"][0]
    assert hkd["E"] == (0.08, False, 3.0, 0.0) and eur["E"] == (0.96, True, 3.0, 3.0)
    assert hkd["H"][1:] == (True, 3.0, 3.0) and eur["H"] == (11.2, False, 3.0, 0.0)
    # Point in time: each of E's movements counts the near-threshold ones before it.
    for name, counts in (("EUR", [0, 1, 2]), ("HKD", [0, 0, 0])):
        assert [
            r["person_near_threshold_90d"] for r in found[name][1] if r["document_number"] == "E"
        ] == counts


def test_a_saved_reference_keeps_what_it_was_built_for(homes, tmp_path) -> None:
    eur = homes["EUR"]
    save_reference(eur, build_reference(eur, as_of=date(2026, 3, 31)))
    loaded = load_reference(eur)
    assert loaded.national == EUR_10000
    # The same lake read with other settings: its near-threshold counts would be wrong, so it is
    # refused, naming both (the engine and dry-runs then build one for the settings).
    other = make_settings(eur.home, national_currency="eur", cash_reporting_threshold="12000")
    with pytest.raises(FeatureError) as caught:
        load_reference(other)
    assert "built for EUR 10,000, not for the settings' EUR 12,000" in str(caught.value)
    assert "sciti risk reference build" in caught.value.remedy


def test_a_reference_saved_before_the_settings_was_built_for_hkd_120000(homes) -> None:
    hkd = homes["HKD"]
    save_reference(hkd, build_reference(hkd, as_of=date(2026, 3, 31)))
    lake = open_lake(hkd.resolved_catalog_uri, hkd.resolved_warehouse)
    meta = query(lake, "SELECT * FROM risk.reference_meta")
    params = json.loads(meta["params"][0].as_py())
    # What save_reference wrote before: features.yaml's parameters, currency_threshold among them.
    old = {k: v for k, v in params.items() if k not in ("national_currency", "cash_reporting_threshold")}
    old["currency_threshold"] = 120000
    at = meta.schema.get_field_index("params")
    lake.replace("risk.reference_meta", meta.set_column(at, "params", pa.array([json.dumps(old)])))
    assert load_reference(hkd).national == DEFAULT == National("HKD", Decimal(120_000))


@pytest.mark.parametrize(
    ("kind", "name", "row", "national", "text"),
    [
        ("currency_declaration", "threshold_ratio", {"threshold_ratio": 0.95}, DEFAULT,
         "Amount is 95% of the reporting threshold (HKD 120,000)"),
        ("currency_declaration", "threshold_ratio", {"threshold_ratio": 0.95}, EUR_10000,
         "Amount is 95% of the reporting threshold (EUR 10,000)"),
        ("declaration", "unit_value", {"unit_value": 2.5, "currency": None}, National("KRW", Decimal(1)),
         "Declared unit value is 2.50 per kg (customs value in KRW, or the item price where no customs value "
         "is declared; item currency: unknown)"),
        ("declaration", "reference_unit_value", {"reference_unit_value": 2.5, "hs6": "851712"},
         National("EUR", Decimal(1)), "Reference unit value for HS 851712 is 2.50 per kg (median of past "
         "declarations on the same basis: customs value in EUR, else"),
    ],
)  # fmt: skip
def test_explanations_name_the_configured_currency(kind, name, row, national, text) -> None:
    assert describe(kind, name, row, 0.4, national=national).startswith(text)


def test_the_demo_world_is_in_the_settings_default_currency_and_threshold() -> None:
    """The demo world is Hong Kong: its amounts are made in the default currency, against the
    default threshold, so a default instance scores it as it was made."""
    from sciti.demo.config import world_data

    made = world_data()
    assert National(made["national_currency"], Decimal(str(made["cash_threshold_hkd"]))) == DEFAULT
