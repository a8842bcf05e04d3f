"""Nested columns (lists, maps, structs) are read by DuckDB from the snapshot's files, with filters
pushed into the Parquet scan; struct histories DuckDB would misread fall back to pyiceberg."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.types import IntegerType, ListType, LongType, MapType, StringType, StructType

from sciti.lake import Lake, query
from sciti.lake.views import duck_type, table_view

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("tags", pa.list_(pa.int32())),
        pa.field("extra", pa.map_(pa.string(), pa.int64())),
        pa.field("party", pa.struct([("name", pa.string()), ("phones", pa.list_(pa.string()))])),
    ]
)
ROWS = [
    {"id": "a", "tags": [1, 2], "extra": [("k", 1)], "party": {"name": "Chan", "phones": ["1", "2"]}},
    {"id": "b", "tags": None, "extra": None, "party": None},
    {"id": "c", "tags": [], "extra": [], "party": {"name": None, "phones": []}},
]


@pytest.fixture
def nested(lake: Lake) -> Lake:
    lake.ensure_table("risk.nested", SCHEMA)
    lake.append("risk.nested", pa.Table.from_pylist(ROWS, schema=SCHEMA))
    return lake


def reads_files(lake: Lake) -> bool:
    """True when DuckDB reads the table's files itself (not pyiceberg's materialised Arrow)."""
    table = lake.table("risk.nested")
    return table_view("risk.nested", table, table.current_snapshot()).arrow is None


def same_as_pyiceberg(lake: Lake) -> None:
    reference = lake.table("risk.nested").scan().to_arrow().sort_by("id").to_pylist()
    assert query(lake, "SELECT * FROM risk.nested ORDER BY id").to_pylist() == reference


@pytest.mark.parametrize(
    ("iceberg", "duck"),
    [
        (ListType(1, StringType()), "VARCHAR[]"),
        (MapType(1, StringType(), 2, LongType()), "MAP(VARCHAR, BIGINT)"),
        (
            StructType(*[]),
            None,  # an empty struct has no DuckDB type
        ),
    ],
)
def test_duck_type_of_nested_types(iceberg, duck) -> None:
    assert duck_type(iceberg) == duck


def test_nested_columns_are_read_by_duckdb(nested: Lake) -> None:
    assert reads_files(nested)
    same_as_pyiceberg(nested)
    sql = "SELECT tags, extra['k'] AS k, party.phones[2] AS p FROM risk.nested WHERE id = 'a'"
    (row,) = query(nested, sql).to_pylist()
    assert row == {"tags": [1, 2], "k": 1, "p": "2"}


def test_a_filter_on_a_table_with_list_columns_is_pushed_into_the_parquet_scan(nested: Lake) -> None:
    plan = query(nested, "EXPLAIN SELECT * FROM risk.nested WHERE id = 'b'").to_pylist()
    text = "\n".join(str(v) for r in plan for v in r.values())
    assert "READ_PARQUET" in text and "id='b'" in text.replace(" ", "")


def test_widened_types_inside_lists_and_structs_stay_on_duckdb(nested: Lake) -> None:
    with nested.table("risk.nested").update_schema() as u:
        u.update_column("tags.element", LongType())
    later = nested.table("risk.nested").schema().as_arrow()
    row = {"id": "d", "tags": [5_000_000_000], "party": {"name": "Wong", "phones": []}}
    nested.append("risk.nested", pa.Table.from_pylist([row], schema=later))
    assert reads_files(nested)
    same_as_pyiceberg(nested)
    tags = query(nested, "SELECT tags[1] AS t FROM risk.nested WHERE id IN ('a', 'd') ORDER BY id")
    assert tags.to_pylist() == [{"t": 1}, {"t": 5_000_000_000}]


def _append(lake: Lake, party: dict) -> None:
    """A row written with the table's new schema (so the current snapshot reads with it)."""
    later = lake.table("risk.nested").schema().as_arrow()
    lake.append("risk.nested", pa.Table.from_pylist([{"id": "d", "party": party}], schema=later))


def _rename(lake: Lake) -> None:
    with lake.table("risk.nested").update_schema() as u:
        u.rename_column("party.name", "full_name")
    _append(lake, {"full_name": "Wong", "phones": []})


def _add(lake: Lake) -> None:
    with lake.table("risk.nested").update_schema() as u:
        u.add_column(("party", "city"), StringType())
    _append(lake, {"name": "Wong", "phones": [], "city": "Kowloon"})
    cities = query(lake, "SELECT party.city AS city FROM risk.nested ORDER BY id").to_pylist()
    assert [r["city"] for r in cities] == [None, None, None, "Kowloon"]


def _drop_and_add_again(lake: Lake) -> None:
    with lake.table("risk.nested").update_schema() as u:
        u.delete_column(("party", "name"))
    with lake.table("risk.nested").update_schema() as u:
        u.add_column(("party", "name"), IntegerType())
    _append(lake, {"name": 7, "phones": []})


@pytest.mark.parametrize("change", [_rename, _add, _drop_and_add_again], ids=lambda f: f.__name__)
def test_changed_struct_children_fall_back_to_pyiceberg_and_read_right(nested: Lake, change) -> None:
    change(nested)
    assert not reads_files(nested)  # DuckDB matches the old files' struct children by name
    same_as_pyiceberg(nested)
