"""validate_table and validate_record must decide alike for the same values.

The vectorised path parses with Arrow and hands what it cannot decide to the per-value rules, so
a disagreement means an Arrow kernel accepted something the rules refuse (or parsed it to a
different value). Tricky values are listed by hand; hypothesis adds generated ones.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciti.model import CodeLists, RecordKind, validate_record, validate_table

TRICKY = {
    "n": [
        "1",
        "-1",
        "+1",
        "007",
        "1.0",
        "1.",
        "1.5",
        "9223372036854775807",
        "999999999999999999",
        "1000000000000000000",
        "-999999999999999999",
        "1e3",
        " 12 ",
        "١٢",
        "0x10",
        "",
        "--1",
        "-" + "0" * 5000 + "12",  # more digits than Python reads at once
        "9" * 5000,
    ],
    "x": [
        "1",
        "1.5",
        ".5",
        "5.",
        "-.5",
        "1e3",
        "1E-3",
        "+.5e-3",
        "inf",
        "nan",
        "Infinity",
        "1e400",
        "1,5",
        "1_000",
        "e5",
        "1.5e",
        "-0",
        "00001.10000",
        "9" * 5000,
    ],
    "amount": [
        "1",
        "1.23455",
        "1.23465",
        "-2.00005",
        "0.00005",
        "0.00015",
        "99999999999999.9999",
        "99999999999999.99995",
        "100000000000000",
        "1e3",
        "1E-5",
        "0.1234567890123456789012",
        "000000000000000000000001.5",
        "12,5",
        ".5",
        "5.",
        "-0",
        "4503599627.37045",
        "1234567.12345",
        "0" * 5000 + "1.5",
        "9" * 5000,
    ],
    "flag": ["true", "TRUE", "t", "Yes", "y", "1", "0", "no", "N", "f", "FALSE", "ja", "2", "on"],
    "day": [
        "2024-02-29",
        "2023-02-29",
        "20240229",
        "2024-1-5",
        "2024-13-01",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "2024-01-01T00:00",
        "24-01-01",
        "2024/01/01",
    ],
    "at": [
        "2024-05-01",
        "2024-05-01T08",
        "2024-05-01T08:30",
        "2024-05-01 08:30:15",
        "2024-05-01T08:30:15Z",
        "2024-05-01T08:30:15.5Z",
        "2024-05-01T08:30:15.123456789",
        "2024-05-01T08:30:15+02",
        "2024-05-01T08:30:15+0230",
        "2024-05-01T08:30:15-05:00",
        "2024-05-01T08:30:15 +02:00",
        "2024-05-01T24:00:00",
        "2024-05-01T08:60",
        "2024-02-30T08:00Z",
        "202405010830",
        "20240501083015",
        "2024-05-01T08:30:15z",
        "2024-05-01Z",
        "0001-01-01T00:00:00+01:00",
        "2024-05-01T08:30:15+24:00",
    ],
    "hs": [
        "847130",
        "8471.30",
        "8471 30 00",
        "84713000",
        "999999",
        "8471",
        "ABCDEF",
        "８４７１３０",
        "010121",
    ],
    "country": ["KR", "kr", "XX", "K R", "KOR", "ı"],
    "currency": ["KRW", "krw", "XXX", "KR"],
    "place": ["CNSHA", "cn sha", "QQABC", "CN0HA", "CNSH", "XZABC"],
    "container": ["CSQU3054383", "csqu 305438-3", "CSQU3054384", "CSQU305438", "CSQU30543833"],
    "imo": ["9074729", "IMO 9074729", "9074728", "907472", "imo9176187"],
    "direction": ["IN", "out", "Out", "up", "İN"],
    "short": ["abc", "abcde", "abcdef", "ééééé", "éééééé"],
    "mass": ["0", "-0", "-0.0", "0.5", "-0.5", "-1e-300", "1e300", "-inf", "heavy"],
    "count": ["0", "-0", "3", "-1", "-000", "1.0", "-1.0"],
    "price": ["0", "-0.00005", "-0.00015", "-0.0001", "12.5", "-12.5"],
    "lat": ["90", "90.0", "90.0000001", "-90", "-90.5", "45.25", "180"],
}


def _compare(kind: RecordKind, codelists: CodeLists, column: str, raw_values: list) -> None:
    table = pa.table({"ref": ["R"] * len(raw_values), column: pa.array(raw_values, pa.string())})
    result = validate_table(kind, table, codelists)
    rejected = dict(result.rejected)
    kept = iter(result.valid.column(column).to_pylist())
    for row, raw in enumerate(raw_values):
        values, problems = validate_record(kind, {"ref": "R", column: raw}, codelists)
        if problems:
            assert rejected.get(row) == problems, f"{column}={raw!r}"
        else:
            assert row not in rejected, f"{column}={raw!r}: table rejected {rejected.get(row)}"
            got = next(kept)
            want = values[column]
            if isinstance(got, dt.datetime):
                got = got.astimezone(dt.UTC)
            assert got == want and type(got) is type(want), (
                f"{column}={raw!r}: table {got!r}, record {want!r}"
            )


@pytest.mark.parametrize("column", sorted(TRICKY))
def test_tricky_values(every_kind: RecordKind, codelists: CodeLists, column: str) -> None:
    _compare(every_kind, codelists, column, TRICKY[column])


@pytest.mark.parametrize("column", sorted(TRICKY))
def test_tricky_values_among_clean_ones(every_kind: RecordKind, codelists: CodeLists, column: str) -> None:
    """The same values inside a column whose other values are clean (exercises the fallback paths)."""
    clean = [
        v for v in TRICKY[column] if not validate_record(every_kind, {"ref": "R", column: v}, codelists)[1]
    ]
    values = [clean[i % len(clean)] for i in range(200)] + TRICKY[column] + clean
    _compare(every_kind, codelists, column, values)


_digits = st.text("0123456789", min_size=1, max_size=22)
_numberish = st.builds(
    lambda sign, a, dot, b, exp: f"{sign}{a}{dot}{b}{exp}",
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", max_size=16),
    st.sampled_from(["", "."]),
    st.text("0123456789", max_size=20),
    st.sampled_from(["", "e3", "E-2", "e", "e+400"]),
)
_stamp = st.builds(
    lambda d, sep, t, z: f"{d}{sep}{t}{z}",
    st.dates(min_value=dt.date(1, 1, 1)).map(str)
    | st.sampled_from(["2024-02-30", "2023-13-01", "0000-01-01"]),
    st.sampled_from(["T", " ", ""]),
    st.sampled_from(["", "08", "08:30", "08:30:15", "08:30:15.1", "08:30:15.1234567", "25:00", "23:59:60"]),
    st.sampled_from(["", "Z", "+02", "+0230", "-05:00", "+14:00", "+24:00", " +01:00"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ints=st.lists(_digits | _numberish, min_size=1, max_size=30),
    numbers=st.lists(_numberish, min_size=1, max_size=30),
    stamps=st.lists(_stamp, min_size=1, max_size=30),
    text=st.lists(st.text(max_size=8), min_size=1, max_size=30),
)
def test_generated_values(every_kind: RecordKind, codelists: CodeLists, ints, numbers, stamps, text) -> None:
    _compare(every_kind, codelists, "n", ints)
    _compare(every_kind, codelists, "x", numbers)
    _compare(every_kind, codelists, "amount", numbers)
    for column in ("mass", "count", "price", "lat"):  # the same numbers against a range
        _compare(every_kind, codelists, column, numbers)
    _compare(every_kind, codelists, "at", stamps)
    _compare(every_kind, codelists, "day", [s[:10] for s in stamps])
    for column in ("country", "hs", "flag", "short", "direction", "place"):
        _compare(every_kind, codelists, column, text)


TYPED = [
    ("n", pa.array([1, -5, None, 10**18, 2**62], pa.int64())),
    ("n", pa.array([1.0, 1.5, float("nan"), 1e20, -0.0])),
    ("n", pa.array([True, False])),
    ("x", pa.array([1, 2**60], pa.int64())),
    ("x", pa.array([1.5, float("inf"), None])),
    ("amount", pa.array([0.00005, 0.00015, 1.23456, 1e15, 2.5])),
    ("amount", pa.array([1, 10**14], pa.int64())),
    ("flag", pa.array([1, 0, 2], pa.int8())),
    ("day", pa.array([dt.datetime(2024, 1, 2, 23, 59), None], pa.timestamp("us"))),
    ("at", pa.array([dt.date(2024, 1, 2)], pa.date32())),
    ("at", pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6)], pa.timestamp("us", tz="America/New_York"))),
    ("ref", pa.array([1, 2], pa.int64())),
    ("mass", pa.array([0.0, -0.0, -0.5, 3.5, None])),
    ("count", pa.array([0, -1, 7], pa.int64())),
    ("price", pa.array([0, -3, 12], pa.int64())),
    ("lat", pa.array([-90.0, -90.5, 90.0, 91.0])),
]


@pytest.mark.parametrize(("column", "array"), TYPED, ids=[f"{c}-{a.type}" for c, a in TYPED])
def test_typed_columns(every_kind: RecordKind, codelists: CodeLists, column: str, array: pa.Array) -> None:
    """Already-typed input (Parquet, SQL extracts) decides like the same Python values given one by one."""
    refs = pa.array(["R"] * len(array)) if column != "ref" else array
    table = pa.table({"ref": refs, column: array}) if column != "ref" else pa.table({"ref": array})
    result = validate_table(every_kind, table, codelists)
    rejected = dict(result.rejected)
    kept = iter(result.valid.column(column).to_pylist())
    for row, raw in enumerate(array.to_pylist()):
        values, problems = validate_record(every_kind, {"ref": refs[row].as_py(), column: raw}, codelists)
        if problems:
            assert [(p.field, repr(p.value)) for p in rejected.get(row, [])] == [
                (p.field, repr(p.value)) for p in problems
            ]
        else:
            assert row not in rejected, f"{column}={raw!r}: {rejected.get(row)}"
            got = next(kept)
            if isinstance(got, dt.datetime):
                got = got.astimezone(dt.UTC)
            assert got == values[column], f"{column}={raw!r}"
