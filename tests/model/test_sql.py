"""The SQL fast path (sciti.model.sql) never disagrees with the model.

For each tricky value: when the generated SQL says it is certain (``ok``), the model must accept the
value and store exactly the SQL's value; when it is not certain, the model decides (nothing to
compare). Plain, common values must be decided by SQL, or the fast path would be pointless.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from sciti.model import CodeLists, RecordKind, make_record_id, validate_record
from sciti.model.sql import code_tables, field_sql, key_text_sql, record_id_sql, sql_str, text_sql
from tests.model.test_parity import TRICKY

EXTRA = {
    "ref": ["R1", " R1 ", "\u3000R1\u00a0", "\tR1\n", "  ", "", "日本"],
    "amount": [
        "3248.910000000001",
        "1.00005",
        "1.00015",
        "-1.00015",
        "-0.00005",
        "0.99995",
        "99999999999999.9999",
        "99999999999999.99995",
        "-99999999999999.99994",
        "1.0000500000000000001",
        "12.345678901234567890",
    ],
    "at": [
        "2024-05-01T08:30:00Z",
        "2024-05-01 08:30",
        "2024-05-01T08:30:00.123456+05:30",
        "2024-05-01T08:30:00.1234567Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2024-02-30T00:00:00Z",
        "2024-05-01T24:00:00Z",
    ],
    "day": ["2024-02-29", "2023-02-29", "0000-01-01", "20240501", "2024-5-1"],
    "country": ["kı", "Kr ", "ＫＲ"],
    "hs": ["8517.13", "8517 13 00", "851713", "85171", "８５１７１３"],
}
# Values the fast path must decide by itself (field -> values).
FAST = {
    "ref": ["R1", " R1 "],
    "n": ["12", "-7"],
    "x": ["1.5", "108.0"],
    "amount": ["372254.4", "3248.910000000001", "1.00015"],
    "flag": ["true", "0"],
    "day": ["2024-05-01"],
    "at": ["2024-05-01T08:30:00Z", "2024-05-01 08:30:00"],
    "hs": ["851713", "8517.13"],
    "country": ["KR", "kr"],
    "currency": ["USD"],
    "place": ["CNSHA", "cn sha"],
    "direction": ["IN"],
    "short": ["abc"],
    "mass": ["0", "108.5"],
    "count": ["0", "12"],
    "price": ["0", "372254.4"],
    "lat": ["-90", "37.5", "90"],
}


@pytest.fixture(scope="module")
def con(codelists: CodeLists) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in code_tables(codelists).items():
        con.register(name, table)
    return con


def _fast(con: duckdb.DuckDBPyConnection, kind: RecordKind, name: str, values: list[str]) -> list[dict]:
    fs = field_sql(kind.field(name), "t")
    con.register("vals", pa.table({"raw": pa.array(values, pa.string())}))
    text = f"SELECT raw, {text_sql(kind.field(name), 'raw')} AS t FROM vals"
    sql = f"SELECT raw, CASE WHEN {fs.ok} THEN {fs.value} END AS value, {fs.ok} AS ok FROM ({text})"
    return con.sql(sql).to_arrow_table().to_pylist()


@pytest.mark.parametrize("name", sorted(set(TRICKY) | set(EXTRA)))
def test_sql_is_certain_only_of_what_the_model_stores(con, every_kind, codelists, name) -> None:
    values = TRICKY.get(name, []) + EXTRA.get(name, [])
    for row in _fast(con, every_kind, name, values):
        if not row["ok"]:
            continue
        typed, problems = validate_record(every_kind, {"ref": "R", name: row["raw"]}, codelists)
        if name == "ref" and row["raw"].strip() == "":
            continue
        assert problems == [], f"{name}={row['raw']!r}: SQL accepts, the model refuses: {problems}"
        assert typed[name] == row["value"], f"{name}={row['raw']!r}: SQL stores {row['value']!r}"


@pytest.mark.parametrize(("name", "values"), sorted(FAST.items()))
def test_common_values_are_decided_in_sql(con, every_kind, name, values) -> None:
    assert [r["ok"] for r in _fast(con, every_kind, name, values)] == [True] * len(values)


@pytest.mark.parametrize("raw", ["", " ", "\u3000"])
def test_a_missing_required_value_is_never_certain(con, every_kind, raw) -> None:
    (row,) = _fast(con, every_kind, "ref", [raw])
    assert row["ok"] is False


@pytest.mark.parametrize(
    ("kind_fields", "parts"),
    [
        (("ref", "n"), ["D1", 1]),
        (("ref", "flag"), ["D1", True]),
        (("ref", "day"), ["D1", "2024-05-01"]),
        (("ref", "at"), ["D1", "2024-05-01T08:30:00.5Z"]),
        (("ref", "n"), ["D1", None]),
    ],
)
def test_record_ids_in_sql_follow_make_record_id(con, every_kind, codelists, kind_fields, parts) -> None:
    raw = dict(zip(kind_fields, parts, strict=True))
    typed, problems = validate_record(every_kind, raw, codelists)
    assert problems == []
    cols = []
    for name in kind_fields:
        fs = field_sql(
            every_kind.field(name),
            text_sql(every_kind.field(name), sql_str(str(raw[name])) if raw[name] is not None else "NULL"),
        )
        cols.append(key_text_sql(every_kind.field(name), fs.value))
    (found,) = con.execute(f"SELECT {record_id_sql('every', 'src', cols)}").fetchone()
    assert found == make_record_id("every", "src", *(typed[n] for n in kind_fields))
