"""The KCS import declarations (../shared/data/kcs/valid.csv) through connectors/kcs."""

from __future__ import annotations

import collections
import csv

import pytest

from sciti.acquire import Runner, list_quarantine, load_connector
from sciti.model import make_record_id
from tests.acquire.conftest import rows

VALID_ROWS = 8134


@pytest.mark.slow
def test_valid_csv_is_stored_or_quarantined_for_true_reasons(settings, shared_data) -> None:
    source = shared_data / "kcs" / "valid.csv"
    runner = Runner(settings)
    (result,) = runner.ingest_path(load_connector(settings, "kcs"), source)
    assert result.status == "committed"
    assert result.received == VALID_ROWS == result.stored + result.quarantined
    assert result.stored > 0.9 * VALID_ROWS  # nearly all stored

    with source.open(encoding="utf-8") as fh:
        by_line = {n: row for n, row in enumerate(csv.DictReader(fh), start=2)}
    with (shared_data / "codelists" / "hs" / "harmonized-system.csv").open(encoding="utf-8") as fh:
        hs2022 = {r["hscode"] for r in csv.DictReader(fh) if r["level"] == "6"}
    entries = list_quarantine(settings, limit=VALID_ROWS)
    assert len(entries) == result.quarantined
    fields = collections.Counter(e["field"] for e in entries)
    assert set(fields) <= {"hs_code", "country_of_dispatch", "country_of_origin"}
    for entry in entries:  # each reason is true of the source row it points at
        row = by_line[int(entry["locator"].rsplit(" ", 1)[1])]
        if entry["field"] == "hs_code":
            assert row["HS6 Code"] in entry["reason"] and row["HS6 Code"] not in hs2022
        else:
            assert "not an ISO 3166 country code" in entry["reason"]

    decls = rows(settings, "std.declarations")
    items = rows(settings, "std.declaration_items")
    assert len(decls) == len(items) == result.stored
    first = next(d for d in decls if d["locator"] == "valid.csv:line 2")
    assert (first["declaration_id"], str(first["acceptance_date"]), first["office_code"]) == (
        "56839011",
        "2021-01-01",
        "40",
    )
    assert first["record_id"] == make_record_id("declaration", "kcs", "56839011", 1)
    item = next(i for i in items if i["declaration_id"] == "56839011")
    assert (item["hs_code"], item["country_of_origin"], item["net_mass_kg"]) == ("760711", "CN", 901.2)
    assert item["parent_record_id"] == first["record_id"]


def test_values_no_declaration_can_hold_are_quarantined_with_a_short_reason(
    settings, shared_data, tmp_path
) -> None:
    """Real rows of valid.csv, each spoiled in one field; the untouched row is stored."""
    with (shared_data / "kcs" / "valid.csv").open(encoding="utf-8") as fh:
        head, *lines = [next(fh) for _ in range(7)]
    rows = [line.rstrip("\n").split(",") for line in lines]
    rows[0][18] = "-901.2"  # Net Mass
    rows[1][19] = "-415092.72"  # Item Price
    rows[2][0] = "D" * 1_000_000  # Declaration ID
    rows[3][2] = "O" * 40  # Office ID
    rows[4][15] = "9" * 5000  # Tax Rate: more digits than Python reads at once
    source = tmp_path / "spoiled.csv"
    source.write_text(head + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")

    (result,) = Runner(settings).ingest_path(load_connector(settings, "kcs"), source)
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 6, 1, 5)
    by_line = {int(e["locator"].rsplit(" ", 1)[1]): e for e in list_quarantine(settings)}
    expect = {
        2: ("net_mass_kg", "'-901.2' is less than 0, the smallest allowed"),
        3: ("item_price", "'-415092.72' is less than 0, the smallest allowed"),
        4: ("declaration_id", "is 1000000 characters long; at most 70 are allowed"),
        5: ("office_code", "is 40 characters long; at most 32 are allowed"),
        6: ("duty_rate", "is not a finite number"),
    }
    for line, (field, reason) in expect.items():
        entry = by_line[line]
        assert entry["field"] == field and reason in entry["reason"], entry
        assert len(entry["reason"]) < 150 * 3  # a short sentence for each output holding the value
