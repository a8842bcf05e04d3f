"""Reference statistics: robust price bands with fallbacks, smoothed rates, point-in-time history."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest

from sciti.risk.features import Reference, build_reference, build_reference_from, compute_batch, compute_one

D0 = date(2025, 1, 1)


def rows(specs: list[dict]) -> pa.Table:
    base = {
        "record_id": None,
        "declaration_id": None,
        "item_number": 1,
        "acceptance_date": D0,
        "importer_id": "IMP",
        "hs_code": "851712",
        "country_of_origin": "CN",
        "item_price": 100.0,
        "net_mass_kg": 1.0,
        "inspected": False,
        "fraud": None,
        "fraud_severity": None,
        "inspected_on": None,
    }
    out = []
    for i, spec in enumerate(specs):
        r = {**base, **spec}
        r["record_id"] = r["declaration_id"] = r["declaration_id"] or f"D{i}"
        r["record_date"] = r["acceptance_date"]
        out.append(r)
    return pa.Table.from_pylist(out)


def ref_of(table: pa.Table, as_of: date = date(2025, 12, 31)) -> Reference:
    return build_reference_from(table, as_of=as_of, snapshot_id="t", known={})


def test_band_is_robust_to_outliers_and_ignores_known_frauds() -> None:
    honest = [{"item_price": p} for p in (100, 102, 98, 101, 99, 100, 103, 97)]
    outliers = [{"item_price": 100_000}, {"item_price": 0.01}]
    fraud = [{"item_price": 1.0, "inspected": True, "fraud": True, "inspected_on": D0}] * 5
    ref = ref_of(rows(honest + outliers + fraud))
    f = compute_one(
        "declaration",
        {"hs_code": "851712", "country_of_origin": "CN", "item_price": 20, "net_mass_kg": 1},
        ref,
    )
    assert f["reference_basis"] == "hs6_origin" and f["reference_unit_value"] == pytest.approx(100, rel=0.02)
    assert f["unit_value_ratio"] == pytest.approx(0.2, rel=0.02)
    assert f["unit_value_band_z"] < -3  # far below a tight band, despite the two wild prices


@pytest.mark.parametrize(
    ("record", "basis"),
    [
        ({"hs_code": "851712", "country_of_origin": "CN"}, "hs6_origin"),
        ({"hs_code": "851712", "country_of_origin": "VN"}, "hs6"),  # too few VN prices: HS6 band
        ({"hs_code": "851799", "country_of_origin": "VN"}, "hs4"),  # unknown HS6: heading band
        ({"hs_code": "010121", "country_of_origin": "VN"}, "none"),
    ],
)
def test_band_falls_back_hs6_origin_then_hs6_then_hs4(record: dict, basis: str) -> None:
    ref = ref_of(rows([{}] * 6 + [{"country_of_origin": "VN"}] * 2))
    f = compute_one("declaration", {**record, "item_price": 50, "net_mass_kg": 1}, ref)
    assert f["reference_basis"] == basis
    assert (f["unit_value_ratio"] is None) == (basis == "none")


def test_hit_rates_are_smoothed_towards_the_overall_rate() -> None:
    table = rows(
        [{"importer_id": "BAD", "inspected": True, "fraud": True, "inspected_on": D0}]
        + [{"importer_id": f"OK{i}", "inspected": True, "fraud": False, "inspected_on": D0} for i in range(9)]
    )
    ref = ref_of(table)
    bad = compute_one("declaration", {"importer_id": "BAD"}, ref)["trader_hit_rate"]
    unseen = compute_one("declaration", {"importer_id": "NEW"}, ref)
    assert ref.prior < bad < 1.0  # one fraud in one inspection is not a 100 % hit rate
    assert unseen["trader_hit_rate"] == ref.prior and unseen["trader_first_time"] is True


def test_point_in_time_features_never_see_the_row_itself_or_the_future() -> None:
    days = [D0 + timedelta(days=i) for i in range(4)]
    table = rows(
        [
            {"acceptance_date": d, "importer_id": "T", "inspected": True, "fraud": True, "inspected_on": d}
            for d in days
        ]
    )
    ref = ref_of(table)
    pit = compute_batch("declaration", table, ref, point_in_time=True).to_pylist()
    assert [r["trader_declarations_365d"] for r in pit] == [0, 1, 2, 3]
    assert [r["trader_inspections"] for r in pit] == [0, 1, 2, 3]
    assert [r["trader_first_time"] for r in pit] == [True, False, False, False]
    rates = [r["trader_hit_rate"] for r in pit]
    assert rates[0] == pytest.approx(ref.prior) and rates == sorted(rates)
    as_of = compute_batch("declaration", table, ref).to_pylist()
    assert {r["trader_inspections"] for r in as_of} == {4}  # as-of: the whole history


def test_reference_from_the_lake_saves_and_loads(world_lake, tmp_path) -> None:
    ref = build_reference(world_lake)
    assert ref.bands.num_rows and ref.history.num_rows and ref.parties.num_rows and ref.watchlist.num_rows
    assert ref.events is not None and ref.known["hs"]
    ref.save(world_lake)
    back = Reference.load(world_lake)
    assert back.snapshot_id == ref.snapshot_id and back.as_of == ref.as_of and back.prior == ref.prior
    assert back.bands.num_rows == ref.bands.num_rows and back.history.num_rows == ref.history.num_rows
    assert back.events is None  # the real-time path needs only the aggregates


def test_unit_value_is_the_customs_value_per_kg_whatever_the_invoice_currency() -> None:
    """Invoices in yen and in dollars for the same goods: the band and the ratio are taken on the
    customs value (national currency), so an undervalued item stands out whatever its currency;
    an item without a customs value (as all of KCS) keeps the item price, against a band of item
    prices: a source that gives customs values for some items only never mixes the two bases."""
    honest = [{"item_price": p, "customs_value": 780.0} for p in (100, 15_000, 100, 15_000, 100, 15_000)]
    honest += [{"item_price": 50.0, "customs_value": None}] * 6  # same goods, no customs value given
    ref = ref_of(rows(honest))
    cheap = {"hs_code": "851712", "country_of_origin": "CN", "net_mass_kg": 1}
    records = [
        {**cheap, "item_price": 3_000, "customs_value": 156.0},  # yen invoice, a fifth of the value
        {**cheap, "item_price": 100, "customs_value": 780.0},  # dollar invoice, the usual value
        {**cheap, "item_price": 780, "customs_value": None},  # no customs value: the item price
        {**cheap, "item_price": 100, "customs_value": 0},  # a zero customs value is no value
    ]
    single = [compute_one("declaration", r, ref) for r in records]
    assert [f["unit_value"] for f in single] == [156.0, 780.0, 780.0, 100.0]
    assert [f["reference_unit_value"] for f in single] == pytest.approx([780.0, 780.0, 50.0, 50.0])
    assert {f["reference_basis"] for f in single} == {"hs6_origin"}
    assert single[0]["unit_value_ratio"] == pytest.approx(0.2) and single[0]["unit_value_band_z"] < -3
    assert single[1]["unit_value_ratio"] == pytest.approx(1.0)
    assert single[3]["unit_value_ratio"] == pytest.approx(2.0)
    batch = compute_batch("declaration", pa.Table.from_pylist(records), ref).to_pylist()
    for b, s in zip(batch, single, strict=True):
        assert b["unit_value"] == pytest.approx(s["unit_value"])
        assert b["reference_unit_value"] == pytest.approx(s["reference_unit_value"])
        assert b["unit_value_ratio"] == pytest.approx(s["unit_value_ratio"])


def test_a_reference_saved_before_bands_per_basis_says_to_rebuild(caplog: pytest.LogCaptureFixture) -> None:
    ref = ref_of(rows([{}] * 6))
    old_keys = pa.array([k.split("\x1f", 1)[1] for k in ref.bands["key"].to_pylist()])
    with caplog.at_level("WARNING", logger="sciti.risk.features.reference"):
        ref_of(rows([{}] * 6))
        assert not caplog.records
        Reference(**{**vars(ref), "bands": ref.bands.set_column(1, "key", old_keys)})
    assert "rebuilt" in caplog.text and "sciti risk train" in caplog.text
