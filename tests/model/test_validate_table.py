"""validate_table: typed output, rejected rows with reasons, valid_index, typed and chunked input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.model import CodeLists, Problem, RecordKind, field_schema, get_kind, validate_table
from sciti.model.rules import HS_EDITION_NOTE


def test_output_schema_and_index(every_kind: RecordKind, codelists: CodeLists) -> None:
    table = pa.table(
        {
            "ref": ["A", "B", None, "D"],
            "n": ["1", "x", "3", "4"],
            "hs": ["8471.30", "847130", "847130", "999999"],
            "locator": ["l1", "l2", "l3", "l4"],  # provenance columns are ignored
        }
    )
    result = validate_table(every_kind, table, codelists)
    assert result.valid.schema == field_schema(every_kind)
    assert result.valid_index.to_pylist() == [0]
    assert result.valid.column("hs").to_pylist() == ["847130"]
    assert result.rejected == [
        (1, [Problem("n", "'x' is not a whole number", "x")]),
        (2, [Problem("ref", "a value is required", None)]),
        (
            3,
            [
                Problem(
                    "hs",
                    "HS code '999999' is not in the HS 2022 nomenclature (" + HS_EDITION_NOTE + ")",
                    "999999",
                )
            ],
        ),
    ]
    assert result.received == 4


def test_missing_required_column(every_kind: RecordKind, codelists: CodeLists) -> None:
    result = validate_table(every_kind, pa.table({"n": ["1", "2"]}), codelists)
    assert result.valid.num_rows == 0
    assert [p for _, ps in result.rejected for p in ps] == [Problem("ref", "a value is required", None)] * 2


def test_unknown_column(every_kind: RecordKind, codelists: CodeLists) -> None:
    table = pa.table({"ref": ["A", "B"], "colour": [None, "red"]})
    result = validate_table(every_kind, table, codelists)
    assert result.valid_index.to_pylist() == [0]
    assert result.rejected == [
        (1, [Problem("colour", "'colour' is not a field of record kind 'every'", "red")])
    ]


@pytest.mark.parametrize(
    ("field", "column", "expected"),
    [
        ("n", pa.array([1, 2], pa.int32()), [1, 2]),
        ("n", pa.array([1.0, 2.0]), [1, 2]),
        ("x", pa.array([1, 2], pa.int16()), [1.0, 2.0]),
        (
            "amount",
            pa.array([Decimal("1.5"), Decimal("2.25")], pa.decimal128(10, 2)),
            [Decimal("1.5"), Decimal("2.25")],
        ),
        ("amount", pa.array([0.1, 2.5]), [Decimal("0.1"), Decimal("2.5")]),
        ("flag", pa.array([True, False]), [True, False]),
        (
            "day",
            pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)]),
            [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
        ),
        (
            "at",
            pa.array([dt.datetime(2024, 1, 2, 3, 4), None], pa.timestamp("ms")),
            [dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC), None],
        ),
        (
            "at",
            pa.array([dt.datetime(2024, 1, 2, 3, 4)], pa.timestamp("s", tz="Asia/Seoul")),
            [dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC)],
        ),
        ("ref", pa.array([12, 13]), ["12", "13"]),
    ],
)
def test_typed_input_columns(every_kind: RecordKind, codelists: CodeLists, field, column, expected) -> None:
    refs = pa.array(["R"] * len(column)) if field != "ref" else column
    table = pa.table({"ref": refs, field: column}) if field != "ref" else pa.table({"ref": column})
    result = validate_table(every_kind, table, codelists)
    assert result.rejected == []
    got = result.valid.column(field).to_pylist()
    assert [g.astimezone(dt.UTC) if isinstance(g, dt.datetime) else g for g in got] == expected


def test_typed_float_that_is_not_whole(every_kind: RecordKind, codelists: CodeLists) -> None:
    result = validate_table(every_kind, pa.table({"ref": ["A"], "n": [1.5]}), codelists)
    assert result.rejected == [(0, [Problem("n", "'1.5' is not a whole number", 1.5)])]


def test_chunked_and_large_string_input(every_kind: RecordKind, codelists: CodeLists) -> None:
    refs = pa.chunked_array([pa.array(["A", "B"], pa.large_string()), pa.array(["C"], pa.large_string())])
    days = pa.chunked_array([["2024-01-01", "bad"], ["20240103"]])
    result = validate_table(every_kind, pa.table({"ref": refs, "day": days}), codelists)
    assert result.valid.column("day").to_pylist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 3)]
    assert result.valid_index.to_pylist() == [0, 2]
    assert result.rejected[0][0] == 1


def test_one_bad_value_among_many_keeps_the_rest(every_kind: RecordKind, codelists: CodeLists) -> None:
    n = 5000
    stamps = ["2024-03-01T10:00:00Z"] * n
    stamps[1234] = "2024-02-30T10:00:00Z"
    amounts = ["12.50"] * n
    amounts[4321] = "12.5.0"
    result = validate_table(
        every_kind, pa.table({"ref": ["R"] * n, "at": stamps, "amount": amounts}), codelists
    )
    assert [row for row, _ in result.rejected] == [1234, 4321]
    assert result.valid.num_rows == n - 2
    assert result.valid.column("amount")[0].as_py() == Decimal("12.5")


def test_real_kcs_rows(shared_data, codelists: CodeLists) -> None:
    """First KCS rows as declaration items: HS 2017 codes that HS 2022 dropped are rejected."""
    import pyarrow.csv as pacsv

    raw = pacsv.read_csv(
        shared_data / "kcs" / "train.csv",
        read_options=pacsv.ReadOptions(block_size=1 << 16),
        convert_options=pacsv.ConvertOptions(
            column_types={"HS6 Code": pa.string(), "Declaration ID": pa.string()}
        ),
    ).slice(0, 2000)
    table = pa.table(
        {
            "declaration_id": raw.column("Declaration ID"),
            "declaration_version": pa.array([1] * raw.num_rows),
            "item_number": pa.array([1] * raw.num_rows),
            "hs_code": raw.column("HS6 Code"),
            "country_of_origin": raw.column("Country of Origin"),
            "net_mass_kg": raw.column("Net Mass"),
            "item_price": raw.column("Item Price"),
            "duty_rate": raw.column("Tax Rate"),
        }
    )
    kind = get_kind("declaration_item")
    result = validate_table(kind, table, codelists)
    assert result.received == 2000
    assert 1800 < result.valid.num_rows < 2000
    reasons = {p.reason.split("'")[0] + p.reason.split("'")[-1] for _, ps in result.rejected for p in ps}
    assert reasons <= {
        f"HS code  is not in the HS 2022 nomenclature ({HS_EDITION_NOTE})",
        " is not an ISO 3166 country code",
    }
