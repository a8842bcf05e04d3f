"""Long literals in lake SQL: answered at once, and every table a query names is still planned.

The scan for the tables a query mentions (``_referenced_tables``) backtracked over long runs of
word characters: a 16,000-character literal took seconds, 100,000 more than two minutes, all in
one regex call holding the GIL, so the whole server stalled. The scan is linear now; the timeout
below exists to fail such a regression, not to measure.
"""

from __future__ import annotations

import importlib

import pytest

from sciti.access import open_query
from sciti.lake import Lake, query
from tests.access.test_policy import build_world, principal
from tests.lake.test_query import SCHEMA, rows

lake_query = importlib.import_module("sciti.lake.query")  # the module; sciti.lake.query is the function
LONG = 200_000
pytestmark = pytest.mark.timeout(60)  # generous: each test takes well under a second


@pytest.fixture
def two_tables(lake: Lake) -> Lake:
    lake.ensure_table("std.decl", SCHEMA)
    lake.ensure_table("raw.feed", SCHEMA)
    lake.append("std.decl", rows(["a", "b"], [1, 2]))
    lake.append("raw.feed", rows(["f"], [9]))
    return lake


@pytest.mark.parametrize(
    "literal",
    ["x" * LONG, "x1" * (LONG // 2), "_" * LONG, "a.b" * (LONG // 3), "é" * LONG],
    ids=["letters", "letters-and-digits", "underscores", "dotted-words", "accented"],
)
def test_a_200000_character_literal_is_answered(two_tables: Lake, literal: str) -> None:
    sql = f"SELECT record_id FROM std.decl WHERE record_id = '{literal}' OR record_id = 'a'"
    assert query(two_tables, sql).to_pylist() == [{"record_id": "a"}]


def test_a_200000_character_quoted_name_is_answered(two_tables: Lake) -> None:
    sql = f'SELECT record_id AS "{"y" * LONG}" FROM std.decl ORDER BY 1'
    assert query(two_tables, sql).column(0).to_pylist() == ["a", "b"]


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT count(*) AS n FROM "std"."decl", "raw"."feed"',
        "SELECT count(*) AS n FROM std . decl, RAW.FEED",
        "SELECT count(*) AS n FROM std.decl,raw.feed",
        # Subqueries: DuckDB 2.0.1 no longer parses a bare table in parentheses, FROM(std.decl).
        "SELECT count(*) AS n FROM(SELECT*FROM std.decl)CROSS JOIN(SELECT*FROM raw.feed)",
        "SELECT count(*) AS n FROM/*c*/std.decl/*c*/,--c\nraw.feed",
        'SELECT count(*) AS n FROM std.decl JOIN"raw".feed ON true',
        f"SELECT count(*) AS n FROM std.decl WHERE '{'z' * LONG}' <> '' AND EXISTS (FROM raw.feed)",
        f"SELECT count(*) AS n FROM std.decl, raw.feed WHERE decl.record_id <> '{'x.y' * (LONG // 3)}'",
    ],
    ids=[
        "quoted",
        "spaced-and-upper",
        "no-space",
        "parentheses",
        "comments",
        "quote-after-word",
        "after-a-long-literal",
        "long-dotted-literal",
    ],
)
def test_every_table_the_query_names_is_planned(two_tables: Lake, sql: str) -> None:
    """Control: the scan stays a superset of what DuckDB reads (a missed table fails the query)."""
    assert query(two_tables, sql).to_pylist() == [{"n": 2}]


def test_a_word_run_together_with_a_name_is_not_a_table(two_tables: Lake) -> None:
    """A zone starts where a word starts: ``xstd.decl`` names the zone xstd, not std."""
    locations = two_tables.table_locations()
    found = lake_query._referenced_tables(
        two_tables, locations, "SELECT xstd.decl, _raw.feed, 1std.decl", None
    )
    assert found == {}
    found = lake_query._referenced_tables(two_tables, locations, "SELECT (std.decl) + raw.feed", None)
    assert set(found) == {"std.decl", "raw.feed"}


def test_a_long_literal_under_the_policy_is_answered_and_masked(tmp_path_factory) -> None:
    """The same through the access policy (vetted, ruled views), as POST /api/v1/sql runs it."""
    from sciti.lake import open_lake
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("long-literal") / "instance"
    home.mkdir()
    s = make_settings(home)
    world = build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
    sql = f"SELECT surname FROM std.passengers WHERE surname <> '{'x' * LONG}'"
    got = open_query(world, principal("analyst"), sql).reader.read_all().to_pylist()
    assert got and "Chen" not in repr(got)  # answered, and still masked
