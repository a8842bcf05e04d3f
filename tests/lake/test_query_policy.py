"""The SQL path under the policy, attacked: hostile SQL never reaches other tables, files or clear values."""

from __future__ import annotations

import importlib

import pytest

from sciti.access import SqlRefused, TableNotReadable, open_query
from sciti.lake import Lake, QueryError, open_lake, query
from sciti.lake.views import TableView, ViewRule, table_view
from tests.access.test_policy import build_world, principal

lake_query = importlib.import_module("sciti.lake.query")  # the module; sciti.lake.query is the function
CLEAR = ("Chen", "Tai Man", "M1234567", "5555", "1980-05-04", "detector dog")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("hostile") / "instance"
    home.mkdir()
    s = make_settings(home)
    return build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))


@pytest.fixture(scope="module")
def data_file(world: Lake) -> str:
    """A real data file of std.passengers (what an attacker would try to read directly)."""
    table = world.catalog.load_table("std.passengers")
    view = table_view("std.passengers", table, table.current_snapshot())
    assert view.paths
    return view.paths[0]


HOSTILE = [
    # other tables, however they are spelled or hidden
    ("SELECT * FROM raw.api_feed", TableNotReadable),
    ("SELECT * FROM Raw.API_FEED", TableNotReadable),
    ('SELECT * FROM "raw"."api_feed"', TableNotReadable),
    ('SELECT * FROM RAW."Api_Feed"', TableNotReadable),
    ("SELECT * FROM /* std.passengers */ raw.api_feed", TableNotReadable),
    ("SELECT * FROM std.passengers -- comment\n UNION ALL SELECT * FROM sec.events", TableNotReadable),
    ("WITH p AS (SELECT * FROM sec.events) SELECT * FROM p", TableNotReadable),
    ("SELECT (SELECT count(*) FROM sec.events) AS n", TableNotReadable),
    ("SELECT * FROM std.passengers WHERE record_ref IN (SELECT line FROM raw.api_feed)", TableNotReadable),
    ("SELECT surname FROM std.passengers UNION SELECT line FROM raw.api_feed", TableNotReadable),
    ("SELECT * FROM std.passengers, LATERAL (SELECT * FROM raw.api_feed)", TableNotReadable),
    ("SELECT * FROM information_schema.tables", TableNotReadable),
    ("SELECT * FROM pg_catalog.pg_class", TableNotReadable),
    ("SELECT * FROM memory.std.passengers", SqlRefused),
    ("SELECT * FROM passengers", SqlRefused),
    ("SELECT * FROM __sciti_base", SqlRefused),
    ("SELECT * FROM __sciti_arrow_std_passengers", SqlRefused),
    # files and catalogs
    ("SELECT * FROM read_csv('/etc/passwd')", SqlRefused),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", SqlRefused),
    ("SELECT * FROM '/etc/passwd'", SqlRefused),
    ("SELECT * FROM glob('/*')", SqlRefused),
    ("SELECT * FROM read_text('/etc/hostname')", SqlRefused),
    ("SELECT * FROM duckdb_views()", SqlRefused),
    ("SELECT * FROM duckdb_tables()", SqlRefused),
    ("SELECT * FROM duckdb_settings()", SqlRefused),
    ("SELECT current_setting('allowed_paths')", SqlRefused),
    ("SELECT getenv('HOME')", SqlRefused),
    ("SELECT * FROM query('SELECT * FROM raw.api_feed')", SqlRefused),
    ("SELECT * FROM query_table('raw.api_feed')", SqlRefused),
    ("SELECT * FROM sqlite_master", SqlRefused),
    ("SELECT * FROM std.passengers AT (VERSION => 1)", SqlRefused),
    ("SELECT main.getenv('HOME')", SqlRefused),
    # statements other than one SELECT
    ("ATTACH 'other.db' AS other", SqlRefused),
    ("COPY std.passengers TO 'out.csv'", SqlRefused),
    ("COPY (SELECT * FROM std.passengers) TO 'out.parquet'", SqlRefused),
    ("INSTALL httpfs", SqlRefused),
    ("LOAD httpfs", SqlRefused),
    ("PRAGMA database_list", SqlRefused),
    ("SET enable_external_access = true", SqlRefused),
    ("RESET lock_configuration", SqlRefused),
    ("CALL pragma_table_info('std.passengers')", SqlRefused),
    ("CREATE TABLE x AS SELECT 1", SqlRefused),
    ("CREATE MACRO leak() AS TABLE SELECT * FROM raw.api_feed", SqlRefused),
    ("DELETE FROM std.passengers", SqlRefused),
    ("EXPLAIN SELECT * FROM std.passengers", SqlRefused),
    ("SHOW TABLES", SqlRefused),
    ("SELECT 1; SELECT 2", SqlRefused),
    ("SELECT 1; ATTACH 'x.db'", SqlRefused),
    ("SELECT * FROM std.passengers; -- trailing\nDROP VIEW std.passengers", SqlRefused),
    ("SELEC * FROM std.passengers", SqlRefused),
]


@pytest.mark.parametrize(("sql", "error"), HOSTILE, ids=[h[0][:50] for h in HOSTILE])
def test_hostile_sql_is_refused(world: Lake, sql: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        open_query(world, principal("analyst"), sql).reader.read_all()


def test_data_files_cannot_be_read_around_the_views(world: Lake, data_file: str) -> None:
    for sql in (
        f"SELECT * FROM read_parquet('{data_file}')",
        f"SELECT * FROM '{data_file}'",
        f"SELECT * FROM parquet_scan(['{data_file}'])",
        f"SELECT * FROM std.passengers UNION ALL BY NAME SELECT * FROM read_parquet('{data_file}')",
        f'SELECT * FROM "{data_file.removesuffix(".parquet")}".parquet',  # DuckDB would read it as a file
        f'SELECT * FROM "{data_file.removesuffix(".parquet")}"."parquet"',
        # a CTE named like the file in another scope does not shadow the outer reference
        f'SELECT * FROM std.passengers, (WITH "{data_file}" AS (SELECT 1) SELECT 1) x, "{data_file}"',
        f'WITH "{data_file}" AS (SELECT 1 AS a) SELECT * FROM std.passengers, "{data_file}"',
    ):
        with pytest.raises(SqlRefused):
            open_query(world, principal("analyst"), sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ';' AS s, surname FROM std.passengers",
        "SELECT 'x; ATTACH ''y.db''' AS s, surname FROM std.passengers",
        "select SURNAME from STD.PASSENGERS",
        'SELECT "surname" FROM "std"."passengers"',
        "WITH p AS (FROM std.passengers) SELECT surname, document_number FROM p",
        "SELECT surname FROM (SELECT * FROM std.passengers) t",
        "SELECT * FROM std.passengers /* a comment; with a semicolon */",
        "SUMMARIZE std.passengers",
        "DESCRIBE std.passengers",
        "SELECT max(surname) AS surname, min(document_number) AS d FROM std.passengers",
    ],
)
def test_allowed_shapes_run_and_stay_masked(world: Lake, sql: str) -> None:
    rows = open_query(world, principal("analyst"), sql).reader.read_all().to_pylist()
    assert rows
    text = repr(rows)
    for clear in CLEAR:
        assert clear not in text, (clear, text)


def test_an_unused_allowed_table_is_not_planned(world: Lake) -> None:
    result = open_query(world, principal("analyst"), "SELECT count(*) AS n FROM std.declarations")
    assert result.tables == ["std.declarations"] and result.reader.read_all().to_pylist() == [{"n": 3}]


def test_lake_applies_rules_it_is_given(world: Lake) -> None:
    rules = {
        "std.declarations": ViewRule(row_filter="office_code = 'KR02'", columns={"office_code": "'masked'"})
    }
    got = query(world, "SELECT record_id, office_code FROM std.declarations", rules=rules).to_pylist()
    assert got == [{"record_id": "d2", "office_code": "masked"}]
    with pytest.raises(QueryError):  # a table without a rule does not exist for a ruled query
        query(world, "SELECT * FROM std.passengers", rules=rules)
    with pytest.raises(QueryError, match="only queries"):
        query(world, "EXPLAIN SELECT * FROM std.declarations", rules=rules)


def test_rows_read_by_pyiceberg_are_copied_ruled_and_the_source_dropped(
    world: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables DuckDB cannot read itself come as Arrow; under a rule the clear Arrow is not reachable."""

    def as_arrow(ident, table, snapshot):
        planned = table_view(ident, table, snapshot)
        arrow = table.scan().to_arrow()
        return TableView(ident, planned.snapshot_id, None, (), arrow, tuple(arrow.schema.names))

    monkeypatch.setattr(lake_query, "table_view", as_arrow)
    rules = {"std.passengers": ViewRule(columns={"surname": "'x'"})}
    sql = "SELECT DISTINCT surname FROM std.passengers"
    assert query(world, sql, rules=rules).to_pylist() == [{"surname": "x"}]
    with pytest.raises(QueryError):
        query(world, "SELECT * FROM __sciti_arrow_std_passengers, std.passengers", rules=rules)
