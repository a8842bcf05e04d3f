"""compute_batch (DuckDB) and compute_one (Python) give the same features, record by record."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.risk.evaluate import read_kcs
from sciti.risk.features import (
    build_reference,
    build_reference_from,
    compute_batch,
    compute_one,
    feature_names,
    known_codes,
    lake_records,
)


def assert_same(batch: list[dict], single: list[dict], names: list[str]) -> None:
    assert len(batch) == len(single)
    for i, (b, s) in enumerate(zip(batch, single, strict=True)):
        for name in names:
            x, y = b[name], s[name]
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (i, name, x, y)
            else:
                assert x == y, (i, name, x, y)


@pytest.fixture(scope="module")
def kcs(shared_data, settings_codes):
    train = read_kcs(shared_data / "kcs" / "train.csv")
    valid = read_kcs(shared_data / "kcs" / "valid.csv")
    ref = build_reference_from(train, as_of=date(2020, 12, 31), snapshot_id="kcs", known=settings_codes)
    return ref, valid


@pytest.fixture(scope="module")
def settings_codes(shared_data):
    from tests.conftest import make_settings

    return known_codes(make_settings(shared_data))


def test_parity_on_the_kcs_validation_file(kcs) -> None:
    ref, valid = kcs
    batch = compute_batch("declaration", valid, ref).to_pylist()
    single = [compute_one("declaration", r, ref) for r in valid.to_pylist()]
    assert len(batch) == 8134
    assert_same(batch, single, feature_names("declaration"))
    assert {b["reference_basis"] for b in batch} >= {"hs6_origin", "hs6"}  # fallbacks are exercised
    assert any(b["unknown_codes"] for b in batch)  # KCS carries HS codes outside HS 2022


def test_parity_on_the_demo_world_lake(world_lake) -> None:
    ref = build_reference(world_lake)
    records = lake_records(world_lake, "declaration")
    assert records.num_rows > 1000
    batch = compute_batch("declaration", records, ref).to_pylist()
    single = [compute_one("declaration", r, ref) for r in records.to_pylist()]
    assert_same(batch, single, feature_names("declaration"))
    assert any(b["aeo"] for b in batch) and any(b["route_transhipment"] for b in batch)


BAD = [
    {"hs_code": "999999", "country_of_origin": "XX", "item_price": "abc", "net_mass_kg": 0},
    {"hs_code": "12", "country_of_origin": None, "country_of_dispatch": "ZZ", "item_price": -5},
    {"hs_code": None, "importer_id": "  ", "acceptance_date": "not a date", "item_price": Decimal("10.5")},
    {},
]


def test_unknown_codes_and_garbage_are_flagged_never_a_crash(kcs) -> None:
    ref, _ = kcs
    single = [compute_one("declaration", r, ref) for r in BAD]
    # The batch path gets the same rows as text columns (as JSON would deliver them).
    names = sorted({k for r in BAD for k in r})
    table = pa.table(
        {n: pa.array([None if r.get(n) is None else str(r[n]) for r in BAD], pa.string()) for n in names}
    )
    batch = compute_batch("declaration", table, ref).to_pylist()
    assert_same(batch, single, [n for n in feature_names("declaration") if n != "record_date"])
    assert single[0]["unknown_codes"] == "hs_code,country_of_origin"
    assert single[0]["unit_value"] is None and single[0]["unit_value_ratio"] is None
    assert (
        single[1]["unknown_codes"] == "country_of_dispatch,hs_code" and single[1]["unknown_code_count"] == 2
    )
    assert single[2]["trader_first_time"] is None  # no importer: cannot say
    assert single[3]["unknown_codes"] == "" and single[3]["trader_hit_rate"] == ref.prior


OTHER_KINDS = {
    "consignment": [
        {
            "hs_code": "851712",
            "consignor_country": "CN",
            "receipt_location": "CNSHK",
            "loading_location": "VNSGN",
        },
        {"hs_code": "9999", "consignor_country": "QQ", "consignee_name": "acme"},
    ],
    "road_cargo_info": [
        {"hs_code": "440890", "consignor_country": "BE", "submitted_at": "2026-01-02T03:04:05Z"},
        {"hs_code": "000000", "driver_nationality": "QQ", "currency": "ZZZ"},
    ],
    "passenger": [{"document_number": "P123", "nationality": "XX", "departure_date": "2026-01-02"}],
    "currency_declaration": [
        {"amount_national": "110000", "document_number": "C1", "currency": "HKD"},
        {"amount_national": "150000", "currency": "QQQ"},
    ],
}


@pytest.mark.parametrize("kind", sorted(OTHER_KINDS))
def test_parity_on_the_other_subject_kinds(kcs, kind: str) -> None:
    ref, _ = kcs
    records = OTHER_KINDS[kind]
    names = sorted({k for r in records for k in r})
    table = pa.table({n: pa.array([r.get(n) for r in records], pa.string()) for n in names})
    batch = compute_batch(kind, table, ref).to_pylist()
    single = [compute_one(kind, r, ref) for r in records]
    assert_same(batch, single, feature_names(kind))
    assert any(s["unknown_codes"] for s in single)
