"""POST /api/v1/sql: rows as JSON over the lake, limits, time travel, and errors in the envelope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.lake import open_lake
from tests.api.conftest import assert_envelope, bearer

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("office", pa.string()),
        ("value", pa.decimal128(12, 2)),
        ("day", pa.date32()),
        ("blob", pa.binary()),
        ("ratio", pa.float64()),
    ]
)


@pytest.fixture
def lake_rows(api_settings):
    lake = open_lake(api_settings.resolved_catalog_uri, api_settings.resolved_warehouse)
    lake.ensure_table("std.api_sql_demo", SCHEMA)
    first = lake.append(
        "std.api_sql_demo",
        pa.table(
            {
                "id": [1, 2, 3],
                "office": ["KR01", "KR02", "KR01"],
                "value": [Decimal("10.10"), Decimal("20.20"), Decimal("30.30")],
                "day": [dt.date(2026, 1, 1)] * 3,
                "blob": [b"\x00\xff", None, b"ok"],
                "ratio": [0.5, float("nan"), 1.0],
            },
            schema=SCHEMA,
        ),
    )
    lake.append(
        "std.api_sql_demo",
        pa.table(
            {
                "id": [4],
                "office": ["KR03"],
                "value": [Decimal("1.00")],
                "day": [dt.date(2026, 2, 1)],
                "blob": [None],
                "ratio": [2.0],
            },
            schema=SCHEMA,
        ),
    )
    return first


@pytest.fixture
def analyst(token_for):
    return bearer(token_for("analyst"))


def test_query_returns_typed_rows(client, lake_rows, analyst):
    response = client.post(
        "/api/v1/sql", headers=analyst, json={"sql": "SELECT * FROM std.api_sql_demo ORDER BY id"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["id", "office", "value", "day", "blob", "ratio"]
    assert body["row_count"] == 4 and body["truncated"] is False
    first, second = body["rows"][0], body["rows"][1]
    assert first == {
        "id": 1,
        "office": "KR01",
        "value": "10.10",
        "day": "2026-01-01",
        "blob": "AP8=",
        "ratio": 0.5,
    }
    assert second["ratio"] is None  # NaN is not JSON


LIMITS = [(1, 1, True), (3, 3, True), (4, 4, False), (100, 4, False)]


def test_limit(client, lake_rows, analyst):
    for limit, rows, truncated in LIMITS:
        body = client.post(
            "/api/v1/sql", headers=analyst, json={"sql": "SELECT id FROM std.api_sql_demo", "limit": limit}
        ).json()
        assert (body["row_count"], body["truncated"]) == (rows, truncated), limit


def test_as_of_a_snapshot_reads_the_past(client, lake_rows, analyst):
    body = client.post(
        "/api/v1/sql",
        headers=analyst,
        json={"sql": "SELECT count(*) AS n FROM std.api_sql_demo", "as_of": str(lake_rows)},
    ).json()
    assert body["rows"] == [{"n": 3}]


BAD_SQL = [
    ("SELECT * FROM std.no_such_table_here", 400, "query_error"),
    ("DROP TABLE std.api_sql_demo", 400, "sql_refused"),
    ("SELEC nonsense", 400, "sql_refused"),
    ("SELECT 1; SELECT 2", 400, "sql_refused"),
    ("SELECT * FROM read_parquet('x.parquet')", 400, "sql_refused"),
    ("SELECT * FROM raw.anything", 403, "table_not_readable"),
]


def test_bad_sql_is_refused_with_a_reason(client, lake_rows, analyst):
    for sql, status, code in BAD_SQL:
        err = assert_envelope(client.post("/api/v1/sql", headers=analyst, json={"sql": sql}), status, code)
        assert err["remedy"], sql
