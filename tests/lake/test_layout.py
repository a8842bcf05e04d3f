"""File layout for point lookups: sorted by the lookup key, bounded row groups (decision 0062)."""

from __future__ import annotations

import random
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from sciti.lake import BATCH_PROPERTY, Lake, query
from sciti.lake.files import snapshot_files
from sciti.lake.layout import DEFAULT_LAYOUT, ROW_GROUP_PROPERTY, ROW_GROUP_ROWS, lookup_key
from sciti.lake.writes import transaction

ITEMS = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        ("batch_id", pa.string()),
        ("parent_record_id", pa.string()),
        ("item_number", pa.int64()),
        ("value", pa.float64()),
    ]
)


def _schema(*fields: tuple[str, bool, object]) -> Schema:
    return Schema(*(NestedField(i + 1, n, t, required=r) for i, (n, r, t) in enumerate(fields)))


@pytest.mark.parametrize(
    ("schema", "key"),
    [
        # a child kind: read by its parent
        (
            _schema(("record_id", True, StringType()), ("parent_record_id", False, StringType())),
            ("parent_record_id",),
        ),
        # a record kind: provenance first, read by its own id
        (_schema(("record_id", True, StringType()), ("office", False, StringType())), ("record_id",)),
        # risk.assessments: its own id comes first, record_id is a reference
        (
            _schema(("assessment_id", True, StringType()), ("record_id", True, StringType())),
            ("assessment_id",),
        ),
        # first column not a required text id: record_id wherever it is
        (_schema(("seq", True, LongType()), ("record_id", False, StringType())), ("record_id",)),
        (_schema(("code", True, StringType()), ("label", False, StringType())), ()),  # a code list
        (_schema(("row_id", False, StringType())), ()),  # optional: not an id to sort by
    ],
)
def test_lookup_key(schema: Schema, key: tuple[str, ...]) -> None:
    assert lookup_key(schema) == key


def items(batch: str, parents: list[str], per_parent: int = 3) -> pa.Table:
    rows = [
        {
            "record_id": f"{batch}-{p}-{n}",
            "batch_id": batch,
            "parent_record_id": p,
            "item_number": n,
            "value": n * 1.5,
        }
        for p in parents
        for n in range(1, per_parent + 1)
    ]
    random.Random(batch).shuffle(rows)  # ingest order is not key order
    return pa.Table.from_pylist(rows, schema=ITEMS)


def local(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def fill_unsorted(lake: Lake, ident: str, batches: int, parents_per_batch: int) -> None:
    """Files as ingest writes them (DuckDB COPY, or tables from before sorted layouts): no order."""
    table = lake.ensure_table(ident, ITEMS)
    for b in range(batches):
        parents = [f"p{random.Random(b * 1000 + i).randrange(10**6):06d}" for i in range(parents_per_batch)]
        # pyiceberg's own append: unsorted, no sort order id; the batch id as the lake records it
        table.append(items(f"b{b}", parents), snapshot_properties={BATCH_PROPERTY: f"b{b}"})


def lookup(lake: Lake, ident: str, parent: str, as_of: int | None = None) -> list[dict]:
    sql = f"SELECT * FROM {ident} WHERE parent_record_id = '{parent}' ORDER BY record_id"  # noqa: S608
    return query(lake, sql, as_of=as_of).to_pylist()


def test_compaction_sorts_child_files_into_row_groups(any_lake: Lake) -> None:
    ident = "std.items"
    fill_unsorted(any_lake, ident, batches=4, parents_per_batch=250)  # 4 files of 750 rows
    table = any_lake.table(ident)
    assert [f.source_id for f in table.sort_order().fields] == [
        table.schema().find_field("parent_record_id").field_id
    ]
    with transaction(table) as tx:  # small row groups so a small test table gets several
        tx.set_properties({ROW_GROUP_PROPERTY: "200"})
    before_snapshot = table.current_snapshot().snapshot_id
    parent = query(any_lake, f"SELECT min(parent_record_id) AS p FROM {ident}").to_pylist()[0]["p"]
    wanted = lookup(any_lake, ident, parent)
    everything = query(any_lake, f"SELECT * FROM {ident} ORDER BY record_id")

    done = any_lake.compact(ident, target_file_rows=2000)

    assert (done.files_before, done.files_rewritten) == (4, 4)
    table = any_lake.table(ident)
    files = snapshot_files(table, table.current_snapshot()).tasks
    assert len(files) == 2  # two groups of 1,500 rows (at most 2,000 per group), each sorted
    for task in files:
        assert task.file.sort_order_id == table.sort_order().order_id
        parquet = pq.ParquetFile(local(task.file.file_path))
        assert parquet.metadata.num_row_groups >= 5  # <= 200 rows each
        assert all(
            parquet.metadata.row_group(i).num_rows <= 200 for i in range(parquet.metadata.num_row_groups)
        )
        keys = parquet.read(columns=["parent_record_id"]).column(0).to_pylist()
        assert keys == sorted(keys)
    assert lookup(any_lake, ident, parent) == wanted and len(wanted) == 3
    assert query(any_lake, f"SELECT * FROM {ident} ORDER BY record_id").equals(everything)
    assert lookup(any_lake, ident, parent, as_of=before_snapshot) == wanted  # time travel unchanged
    assert all(any_lake.has_batch(ident, f"b{b}") for b in range(4))
    # Sorted files are not rewritten again.
    assert any_lake.compact(ident, target_file_rows=2000).files_rewritten == 0


def test_a_large_unsorted_file_is_sorted_once(lake: Lake) -> None:
    """A file above the size target is left alone by size, but rewritten once to be sorted."""
    fill_unsorted(lake, "std.items", batches=1, parents_per_batch=400)  # 1,200 rows
    first = lake.compact("std.items", target_file_rows=1000)
    assert (first.files_before, first.files_rewritten, first.files_after) == (1, 1, 2)
    assert lake.compact("std.items", target_file_rows=1000).files_rewritten == 0
    assert query(lake, "SELECT count(*) AS n FROM std.items").to_pylist() == [{"n": 1200}]


def test_append_writes_sorted_files(lake: Lake) -> None:
    """Writes through the lake (appends, upserts) are sorted and say so: compaction skips them."""
    lake.ensure_table("std.items", ITEMS)
    lake.append("std.items", items("b0", [f"p{i:03d}" for i in range(300, 0, -1)]), batch_id="b0")
    table = lake.table("std.items")
    (task,) = snapshot_files(table, table.current_snapshot()).tasks
    assert task.file.sort_order_id == table.sort_order().order_id
    keys = pq.read_table(local(task.file.file_path), columns=["parent_record_id"]).column(0).to_pylist()
    assert keys == sorted(keys)
    assert lake.has_batch("std.items", "b0")
    assert lake.compact("std.items", target_file_rows=100_000).files_rewritten == 0


def test_layout_defaults_fill_gaps_only(lake: Lake) -> None:
    """Tables get the row-group limit and sort order when they lack them; a choice made is kept."""
    table = lake.ensure_table("std.items", ITEMS)
    assert table.properties[ROW_GROUP_PROPERTY] == str(ROW_GROUP_ROWS)
    with transaction(table) as tx:
        tx.set_properties({ROW_GROUP_PROPERTY: "4096"})
    with table.update_sort_order() as update:
        update.asc("item_number", IdentityTransform())
    table = lake.ensure_table("std.items", ITEMS)
    assert table.properties[ROW_GROUP_PROPERTY] == "4096"
    assert [f.source_id for f in table.sort_order().fields] == [
        table.schema().find_field("item_number").field_id
    ]
    lake.append("std.items", items("b1", ["p1", "p2"]), batch_id="b1")
    got = query(lake, "SELECT item_number FROM std.items").column(0).to_pylist()
    assert got == sorted(got)  # the file is in the table's own order (scan order is file order)


def test_two_processes_giving_a_table_its_layout_at_once(lake: Lake) -> None:
    """The loser of the race keeps going (the winner set the same defaults); nothing is lost."""
    # A table from before sorted layouts (row-group limit set: the sort order is what races).
    lake.catalog.create_table("std.items", schema=ITEMS, properties=DEFAULT_LAYOUT)
    other = Lake(lake.catalog_uri, lake.warehouse)
    stale = other.table("std.items")  # loaded before the first process changes it
    lake.ensure_table("std.items", ITEMS)
    other._ensure_layout(stale)  # its commit fails on the stale metadata: no error
    table = other.ensure_table("std.items", ITEMS)  # reloaded: sees the winner's layout
    assert [f.source_id for f in table.sort_order().fields] == [
        table.schema().find_field("parent_record_id").field_id
    ]
    assert table.properties[ROW_GROUP_PROPERTY] == str(ROW_GROUP_ROWS)
