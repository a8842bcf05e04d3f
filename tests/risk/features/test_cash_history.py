"""Cash structuring history (person_movements_90d, person_near_threshold_90d) in both paths."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from sciti.lake import open_lake
from sciti.risk.features import build_reference, compute_batch, compute_one
from sciti.settings import Settings
from tests.conftest import make_settings

DAY0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCHEMA = pa.schema(
    [
        ("declaration_number", pa.string()),
        ("declared_at", pa.timestamp("us", tz="UTC")),
        ("document_number", pa.string()),
        ("amount_national", pa.float64()),
    ]
)


def cash_rows(specs: list[tuple[str, datetime, float]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"declaration_number": f"C{i}", "declared_at": at, "document_number": doc, "amount_national": v}
            for i, (doc, at, v) in enumerate(specs)
        ],
        schema=SCHEMA,
    )


@pytest.fixture(scope="module")
def cash_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pa.Table]:
    """One person (P1) structuring: 19 movements just below HKD 120,000 on 19 days, then one above."""
    settings = make_settings(tmp_path_factory.mktemp("cash"))
    specs = [("P1", DAY0 + timedelta(days=i), 110_000.0) for i in range(19)]
    specs.append(("P1", DAY0 + timedelta(days=19), 150_000.0))
    specs.append(("P2", DAY0 + timedelta(days=3), 5_000.0))
    specs.append(("P1", DAY0 - timedelta(days=200), 110_000.0))  # long before: outside every window
    table = cash_rows(specs)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table("std.currency_declarations", table.schema)
    lake.append("std.currency_declarations", table)
    return settings, table


def test_reference_within_90_days_of_ten_or_more_near_threshold_movements_builds(cash_lake) -> None:
    """A bare ``0.0`` typed the history columns DECIMAL(2,1): 19 flagged movements overflowed."""
    settings, _ = cash_lake
    ref = build_reference(settings, as_of=date(2026, 2, 1))
    rows = {r["key"]: r for r in ref.history.to_pylist() if r["grp"] == "cash_person"}
    assert rows["P1"]["flagged"] == 19.0 and rows["P1"]["declarations_365d"] == 20.0
    assert rows["P2"]["flagged"] == 0.0
    assert ref.history.schema.field("flagged").type == pa.float64()


def test_real_time_counts_the_90_days_up_to_the_reference(cash_lake) -> None:
    settings, _ = cash_lake
    ref = build_reference(settings, as_of=date(2026, 2, 1))
    live = {"declaration_number": "LIVE", "declared_at": datetime(2026, 2, 1, 12, tzinfo=UTC)}
    one = compute_one("currency_declaration", {**live, "document_number": "P1"}, ref)
    batch = compute_batch("currency_declaration", cash_rows([("P1", live["declared_at"], 1.0)]), ref)
    assert one["person_movements_90d"] == batch["person_movements_90d"][0].as_py() == 20.0
    assert one["person_near_threshold_90d"] == batch["person_near_threshold_90d"][0].as_py() == 19.0


def test_point_in_time_counts_the_90_days_before_each_record_not_itself(cash_lake) -> None:
    settings, table = cash_lake
    ref = build_reference(settings, as_of=date(2026, 2, 1))
    pit = compute_batch("currency_declaration", table, ref, point_in_time=True).to_pylist()
    p1 = [r for r in pit if r["document_number"] == "P1" and r["declared_at"] >= DAY0]
    assert [r["person_movements_90d"] for r in p1] == [float(i) for i in range(20)]
    assert [r["person_near_threshold_90d"] for r in p1] == [float(i) for i in range(19)] + [19.0]
    p2 = next(r for r in pit if r["document_number"] == "P2")
    assert p2["person_movements_90d"] == 0.0 and p2["person_near_threshold_90d"] == 0.0
    # As of the reference, every record reads the whole window (what the real-time path sees now).
    as_of = compute_batch("currency_declaration", table, ref).to_pylist()
    assert {r["person_near_threshold_90d"] for r in as_of if r["document_number"] == "P1"} == {19.0}
