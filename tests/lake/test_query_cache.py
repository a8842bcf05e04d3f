"""Repeated queries reuse loaded table metadata, and still see every commit (decision 0062)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.serializers import FromInputFile

from sciti.lake import Lake, query
from sciti.lake.views import table_view

SCHEMA = pa.schema([pa.field("record_id", pa.string(), nullable=False), ("office", pa.string())])


def rows(*ids: str) -> pa.Table:
    return pa.table({"record_id": list(ids), "office": ["A"] * len(ids)}, schema=SCHEMA)


def ids(lake: Lake) -> list[str]:
    return query(lake, "SELECT record_id FROM std.decl ORDER BY 1").column(0).to_pylist()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every table metadata file read (a JSON read and parse each), by any lake of this process."""
    seen: list[str] = []
    original = FromInputFile.table_metadata

    def counting(input_file, encoding: str = "utf-8"):
        seen.append(input_file.location)
        return original(input_file, encoding)

    monkeypatch.setattr(FromInputFile, "table_metadata", staticmethod(counting))
    return seen


@pytest.mark.parametrize("writer", ["same lake", "another process"])
def test_repeated_queries_reuse_metadata_until_a_commit(lake: Lake, loads: list[str], writer: str) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    lake.append("std.decl", rows("a"))
    assert ids(lake) == ["a"]
    loads.clear()
    assert ids(lake) == ["a"] and ids(lake) == ["a"]
    assert loads == []  # unchanged table: no metadata file read again

    other = lake if writer == "same lake" else make_lake_like(lake)
    other.append("std.decl", rows("b"))
    # The writer reads the table once when it does not hold it yet; its commit reads nothing (0125).
    assert len(loads) == (0 if writer == "same lake" else 1)
    loads.clear()
    assert ids(lake) == ["a", "b"]  # the next query sees the commit
    assert len(loads) == (0 if writer == "same lake" else 1)  # the writer's own table is current
    other.delete("std.decl", "record_id = 'a'")
    assert ids(lake) == ["b"]


def make_lake_like(lake: Lake) -> Lake:
    """A second Lake on the same catalog: what another process sees (nothing cached in common)."""
    return Lake(lake.catalog_uri, lake.warehouse)


def test_time_travel_and_dropped_tables_after_caching(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    first = lake.append("std.decl", rows("a"))
    lake.append("std.decl", rows("b"))
    assert ids(lake) == ["a", "b"]
    assert query(lake, "SELECT count(*) AS n FROM std.decl", as_of=first).to_pylist() == [{"n": 1}]
    lake.catalog.drop_table("std.decl")
    with pytest.raises(Exception, match="std.decl"):
        ids(lake)


def test_views_read_by_name_only_when_every_file_matches_the_schema(lake: Lake) -> None:
    """Compacted files hold the schema exactly: read by name (cheaper); after a rename, by field id."""
    lake.ensure_table("std.decl", SCHEMA)
    lake.append("std.decl", rows("a"))
    table = lake.table("std.decl")
    view = table_view("std.decl", table, table.current_snapshot())
    assert view.select_sql is not None and "schema=" not in view.select_sql
    with table.update_schema() as update:
        update.rename_column("office", "office_code")
    lake.append("std.decl", pa.table({"record_id": ["b"], "office_code": ["B"]}))
    table = lake.table("std.decl")
    view = table_view("std.decl", table, table.current_snapshot())
    assert view.select_sql is not None and "schema=" in view.select_sql  # the old file says "office"
    got = query(lake, "SELECT record_id, office_code FROM std.decl ORDER BY 1").to_pylist()
    assert got == [{"record_id": "a", "office_code": "A"}, {"record_id": "b", "office_code": "B"}]
    lake.compact("std.decl", target_file_rows=100)
    table = lake.table("std.decl")
    view = table_view("std.decl", table, table.current_snapshot())
    assert view.select_sql is not None and "schema=" not in view.select_sql
    assert query(lake, "SELECT record_id, office_code FROM std.decl ORDER BY 1").to_pylist() == got
