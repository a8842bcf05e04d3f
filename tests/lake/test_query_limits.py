"""The user-query path's limits (decision 0098): a time limit that stops DuckDB, memory and threads
per query, stopping every running query at shutdown, and errors that name what was sent."""

from __future__ import annotations

import importlib
import threading
import time

import duckdb
import pytest

from sciti.lake import Lake, QueryError, query
from sciti.lake.query import Limits, open_reader
from sciti.lake.running import QueryStopped, QueryTimeout, stop_running_queries
from tests.lake.test_query import SCHEMA, rows

lake_query = importlib.import_module("sciti.lake.query")  # the module; sciti.lake.query is the function
queries = importlib.import_module("sciti.lake.running")
SLOW_SQL = "SELECT sum(hash(a.range * b.range)) AS s FROM range(200000) a, range(200000) b"
pytestmark = pytest.mark.timeout(120)  # the old code ran SLOW_SQL for minutes


@pytest.fixture
def decl(lake: Lake) -> Lake:
    lake.ensure_table("std.decl", SCHEMA)
    lake.append("std.decl", rows(["a", "b"], [1, 2]))
    return lake


def test_a_query_past_its_time_limit_is_stopped(lake: Lake) -> None:
    with pytest.raises(QueryTimeout, match=r"ran longer than 1 s and was stopped") as caught:
        query(lake, SLOW_SQL, limits=Limits(seconds=1))
    assert caught.value.code == "query_timeout" and "narrow it" in (caught.value.remedy or "")
    assert not queries._RUNNING, "the stopped query is forgotten"


def test_a_streamed_query_is_stopped_between_batches_too(decl: Lake) -> None:
    running = open_reader(decl, "SELECT * FROM range(10000000)", batch_rows=1000, limits=Limits(seconds=60))
    next(iter(running.reader))
    running.stop("time")  # as the timer does when the caller is slow to read
    with pytest.raises(QueryTimeout):
        running.reader.read_all()
    assert not queries._RUNNING


def test_shutdown_stops_running_queries(lake: Lake) -> None:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            query(lake, SLOW_SQL, limits=Limits(seconds=600))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    while worker.is_alive() and not queries._RUNNING:
        time.sleep(0.01)
    assert stop_running_queries() == 1
    worker.join(60)
    assert not worker.is_alive(), "the query was not stopped"
    assert isinstance(failure[0], QueryStopped) and failure[0].http_status == 503


def test_a_stop_that_comes_just_before_a_statement_starts_still_stops_it() -> None:
    """DuckDB forgets an interrupt sent while its connection is idle: the stop is repeated."""
    conn = duckdb.connect()
    stopped = queries.RunningQuery(conn, None)
    stopped.stop("shutdown")  # the connection is idle: this interrupt alone would be lost
    failure: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute(SLOW_SQL).fetchall()
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(20)
    alive = worker.is_alive()
    conn.interrupt()  # let a failing run end
    worker.join(60)
    stopped.close()
    assert not alive, "the statement ran on after the stop"
    assert isinstance(failure[0], duckdb.InterruptException)


def test_limits_set_memory_and_threads_only_when_asked(decl: Lake) -> None:
    sql = "SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m"
    limited = query(decl, sql, limits=Limits(memory="100MB", threads=1)).to_pylist()[0]
    assert limited["t"] == 1 and limited["m"].startswith("95")  # 100 MB in MiB
    unlimited = query(decl, sql).to_pylist()[0]  # ingestion, scoring: DuckDB's defaults
    assert unlimited["m"] != limited["m"]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("INSTALL httpfs", "INSTALL"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("USE std", "USE"),
        ("/* a */ -- b\n FORCE CHECKPOINT", "FORCE CHECKPOINT"),
    ],
)
def test_refusals_name_the_statement_sent(lake: Lake, sql: str, named: str) -> None:
    with pytest.raises(QueryError) as caught:
        query(lake, sql)
    assert caught.value.message.endswith(f"not {named}"), caught.value.message


def test_a_missing_table_is_named_without_duckdbs_schema_story(decl: Lake) -> None:
    with pytest.raises(QueryError) as caught:
        query(decl, "SELECT * FROM std.nosuch")
    assert caught.value.message == "table std.nosuch does not exist"


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT count(*) AS n FROM "std"."DECL"',
        'SELECT count(*) AS n FROM "STD".decl',
        "SELECT count(*) AS n FROM Std.Decl",
    ],
)
def test_quoted_names_in_any_case(decl: Lake, sql: str) -> None:
    assert query(decl, sql).to_pylist() == [{"n": 2}]


@pytest.mark.parametrize(
    "text",
    [
        '"' + "a" * 200_000,
        '"a".' * 50_000,
        '"a" . "' * 30_000,
        'x."' * 70_000,
        '""' * 100_000,
        "a ." * 70_000,
    ],
    ids=["unclosed-quote", "quoted-dots", "quoted-pairs", "bare-then-quote", "empty-quotes", "spaced-dots"],
)
def test_the_table_scan_stays_linear_with_quotes(text: str) -> None:
    started = time.process_time()  # CPU time: a busy shared machine does not stretch it
    list(lake_query._QUALIFIED.finditer(text))
    # Linear: about 0.02 s. Quadratic backtracking took minutes, so the bound is far from both.
    assert time.process_time() - started < 5
