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
    ("SELECT * FROM std.no_such_table_here", 403, "table_not_readable"),  # as a forbidden one
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


# --- Limits, audit whatever the outcome, and answers alike (decision 0098) -------------------------

SLOW_SQL = "SELECT sum(hash(a.range * b.range)) AS s FROM range(200000) a, range(200000) b"


def _entries(settings, action: str):
    from sciti.access import list_entries
    from sciti.ops import session_scope

    with session_scope(settings.resolved_ops_db_url) as s:
        return list_entries(s, action=action)


@pytest.fixture
def limited(api_settings, lake_rows):
    """A client whose instance stops queries after 1 s and caps exports and answers low."""
    from tests.api.conftest import make_client

    s = api_settings.model_copy(
        update={
            "sql_timeout_seconds": 1.0,
            "sql_export_timeout_seconds": 1.0,
            "sql_export_max_rows": 1000,
            "sql_max_answer_bytes": 1_000_000,
        }
    )
    with make_client(s) as c:
        yield c, s


@pytest.mark.timeout(120)
def test_a_query_past_its_time_limit_is_stopped_and_audited(limited, analyst):
    import threading

    client, settings = limited
    answers: dict = {}
    slow = threading.Thread(
        target=lambda: answers.update(
            slow=client.post("/api/v1/sql", headers=analyst, json={"sql": SLOW_SQL})
        )
    )
    slow.start()
    meanwhile = client.post(
        "/api/v1/sql", headers=analyst, json={"sql": "SELECT count(*) AS n FROM std.api_sql_demo"}
    )
    assert meanwhile.status_code == 200 and meanwhile.json()["rows"] == [{"n": 4}]
    slow.join(100)
    assert not slow.is_alive(), "the query was not stopped"
    err = assert_envelope(answers["slow"], 422, "query_timeout")
    assert "longer than 1 s" in err["message"] and "narrow it" in err["remedy"]
    outcomes = {e.details["sql"]: e.outcome for e in _entries(settings, "query")}
    assert outcomes[SLOW_SQL] == "timed_out"


@pytest.mark.timeout(120)
def test_an_export_past_its_time_limit_is_stopped_and_audited(limited, analyst):
    client, settings = limited
    err = assert_envelope(
        client.post("/api/v1/sql/export", headers=analyst, json={"sql": SLOW_SQL}), 422, "query_timeout"
    )
    assert "longer than 1 s" in err["message"]
    assert [e.outcome for e in _entries(settings, "export")] == ["timed_out"]


def test_an_export_over_the_row_cap_is_refused_and_its_file_removed(limited, analyst, tmp_path, monkeypatch):
    import tempfile

    client, settings = limited
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sql = "SELECT range, md5(range::varchar) AS h FROM range(100000)"
    err = assert_envelope(
        client.post("/api/v1/sql/export", headers=analyst, json={"sql": sql}), 422, "answer_too_large"
    )
    assert "more than 1,000 rows" in err["message"] and "sql_export_max_rows" in err["remedy"]
    assert not list(tmp_path.glob("sciti-export-*")), "the partial export was left behind"
    (entry,) = _entries(settings, "export")
    assert entry.outcome == "refused" and "rows" not in entry.details
    small = client.post("/api/v1/sql/export", headers=analyst, json={"sql": "SELECT range FROM range(1000)"})
    assert small.status_code == 200 and small.text.count("\n") == 1001


def test_an_answer_over_the_byte_cap_is_refused_whatever_its_rows(limited, analyst):
    client, settings = limited
    sql = "SELECT list(range) AS l FROM range(1000000)"  # one row of about 8 MB
    err = assert_envelope(
        client.post("/api/v1/sql", headers=analyst, json={"sql": sql, "limit": 1}), 422, "answer_too_large"
    )
    assert "select fewer columns" in err["remedy"] and "export" in err["remedy"]
    assert [e.outcome for e in _entries(settings, "query")] == ["refused"]
    # Only the rows returned count: a large result cut by the limit is answered.
    big = client.post(
        "/api/v1/sql", headers=analyst, json={"sql": "SELECT range FROM range(1000000)", "limit": 10}
    )
    assert big.status_code == 200 and big.json()["row_count"] == 10


def test_a_missing_table_answers_like_a_forbidden_one(client, lake_rows, analyst, api_settings):
    lake = open_lake(api_settings.resolved_catalog_uri, api_settings.resolved_warehouse)
    lake.ensure_table("raw.api_sql_secret", SCHEMA)  # exists; analysts may not read raw
    answers = {}
    for table in ("raw.api_sql_secret", "raw.api_sql_nosuch", "std.api_sql_nosuch"):
        response = client.post("/api/v1/sql", headers=analyst, json={"sql": f"SELECT * FROM {table}"})
        err = assert_envelope(response, 403, "table_not_readable")
        answers[table] = (err["message"].replace(table, "T"), err["remedy"], err["details"])
        assert "schema" not in err["message"], err["message"]
    forbidden, missing_raw, missing_std = answers.values()
    assert forbidden[:2] == missing_raw[:2] == missing_std[:2]
    assert [e.outcome for e in _entries(api_settings, "query")] == ["denied"] * 3


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT count(*) AS n FROM "std"."API_SQL_DEMO"',
        'SELECT count(*) AS n FROM "STD"."Api_Sql_Demo"',
    ],
)
def test_quoted_names_in_any_case(client, lake_rows, analyst, sql):
    response = client.post("/api/v1/sql", headers=analyst, json={"sql": sql})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [{"n": 4}]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("INSTALL httpfs", "INSTALL"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("USE std", "USE"),
        ("/* x */ FORCE INSTALL httpfs", "FORCE INSTALL"),
    ],
)
def test_refusals_name_the_statement_sent(client, lake_rows, analyst, sql, named):
    err = assert_envelope(client.post("/api/v1/sql", headers=analyst, json={"sql": sql}), 400, "sql_refused")
    assert err["message"].endswith(f"not {named}"), err["message"]


def test_as_of_before_a_table_existed_says_so(client, lake_rows, analyst):
    err = assert_envelope(
        client.post(
            "/api/v1/sql",
            headers=analyst,
            json={"sql": "SELECT count(*) AS n FROM std.api_sql_demo", "as_of": "2020-01-01T00:00:00Z"},
        ),
        400,
        "query_error",
    )
    assert err["message"].startswith(
        "std.api_sql_demo did not exist yet at 2020-01-01T00:00:00Z; it was created "
    )


def test_as_of_before_the_oldest_kept_snapshot_says_history_was_expired(
    client, lake_rows, analyst, api_settings
):
    lake = open_lake(api_settings.resolved_catalog_uri, api_settings.resolved_warehouse)
    table = lake.table("std.api_sql_demo")
    first, second = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    assert lake.expire_snapshots("std.api_sql_demo", dt.timedelta(0), retain_last=1).expired == 1
    # The first snapshot's own time: the table had rows then, but that history is gone.
    between = (
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=first.timestamp_ms)
    ).isoformat()
    err = assert_envelope(
        client.post(
            "/api/v1/sql",
            headers=analyst,
            json={"sql": "SELECT count(*) AS n FROM std.api_sql_demo", "as_of": between},
        ),
        400,
        "query_error",
    )
    assert "std.api_sql_demo has no snapshot at or before" in err["message"]
    assert (
        "its oldest kept snapshot is from" in err["message"]
        and "history before that was expired" in err["message"]
    )
    now = client.post(
        "/api/v1/sql", headers=analyst, json={"sql": "SELECT count(*) AS n FROM std.api_sql_demo"}
    )
    assert now.json()["rows"] == [{"n": 4}]
