"""Commit cost levers and upkeep: cached tables, has_batch after expiry, Lake.maintain."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from sciti.lake import Lake, LakeError, query
from sciti.lake.catalog import TABLE_PROPERTIES

from .conftest import make_lake

# Like every raw/std table: each row carries the batch that brought it.
SCHEMA = pa.schema(
    [pa.field("record_id", pa.string(), nullable=False), ("batch_id", pa.string()), ("office", pa.string())]
)
NO_BATCH_COLUMN = pa.schema([pa.field("record_id", pa.string(), nullable=False), ("office", pa.string())])


def rows(batch: str, n: int = 2, schema: pa.Schema = SCHEMA) -> pa.Table:
    data = {"record_id": [f"{batch}-{i}" for i in range(n)], "batch_id": [batch] * n, "office": ["A"] * n}
    return pa.table({f.name: data[f.name] for f in schema}, schema=schema)


def fill(lake: Lake, batches: int, schema: pa.Schema = SCHEMA) -> None:
    lake.ensure_table("std.decl", schema)
    for i in range(batches):
        lake.append("std.decl", rows(f"b{i}", schema=schema), batch_id=f"b{i}")


def count(lake: Lake) -> int:
    return query(lake, "SELECT count(*) AS n FROM std.decl").to_pylist()[0]["n"]


@pytest.mark.parametrize(
    ("batch", "found"),
    [
        ("b0", True),  # expired snapshot: found in the data
        ("b3", True),  # expired, and its file was compacted with others
        ("b5", True),  # still in the snapshot history
        ("b9", False),  # never arrived
        ("", False),
    ],
)
def test_has_batch_survives_snapshot_expiry(any_lake: Lake, batch: str, found: bool) -> None:
    fill(any_lake, 6)
    any_lake.compact("std.decl", target_file_rows=100)
    assert any_lake.expire_snapshots("std.decl", timedelta(0), retain_last=2) == 5
    assert [h.batch_id for h in any_lake.history("std.decl")] == ["b5", None]
    assert any_lake.has_batch("std.decl", batch) is found


@pytest.mark.parametrize(
    ("schema", "expire", "found"),
    [
        (SCHEMA, False, True),  # from the snapshot summaries
        (NO_BATCH_COLUMN, False, True),
        (NO_BATCH_COLUMN, True, False),  # no summary left and no column to look in
    ],
)
def test_has_batch_sources(lake: Lake, schema: pa.Schema, expire: bool, found: bool) -> None:
    fill(lake, 3, schema)
    if expire:
        lake.expire_snapshots("std.decl", timedelta(0), retain_last=1)
    assert lake.has_batch("std.decl", "b0") is found


def test_has_batch_of_a_missing_table(lake: Lake) -> None:
    assert lake.has_batch("std.nothing", "b0") is False


@pytest.mark.parametrize(
    ("keep_days", "keep_last", "expired", "left"),
    [
        (0, 3, 5, 3),  # 8 snapshots (7 appends + compaction) -> newest 3
        (0, 1, 7, 1),
        (30, 1, 0, 8),  # all younger than the retention
    ],
)
def test_maintain(any_lake: Lake, keep_days: float, keep_last: int, expired: int, left: int) -> None:
    fill(any_lake, 7)
    result = any_lake.maintain("std.decl", keep_days=keep_days, keep_last=keep_last)
    assert (result.compact.files_before, result.compact.files_after) == (7, 1)
    assert (result.expired, result.snapshots_left) == (expired, left)
    assert len(any_lake.history("std.decl")) == left
    assert count(any_lake) == 14
    assert all(any_lake.has_batch("std.decl", f"b{i}") for i in range(7))


@pytest.mark.parametrize(("keep_days", "keep_last"), [(-1, 5), (1, 0)])
def test_maintain_refuses_to_drop_everything(lake: Lake, keep_days: float, keep_last: int) -> None:
    fill(lake, 2)
    with pytest.raises(LakeError, match="cannot keep"):
        lake.maintain("std.decl", keep_days=keep_days, keep_last=keep_last)


def test_two_lakes_on_one_catalog_see_each_others_commits(settings) -> None:
    """The cached table is reused only while the catalog still points at its metadata."""
    first, second = make_lake(settings), make_lake(settings)
    fill(first, 1)
    assert first.table("std.decl").current_snapshot() is not None
    second.append("std.decl", rows("b1"), batch_id="b1")
    assert [h.batch_id for h in first.history("std.decl")] == ["b0", "b1"]
    first.append("std.decl", rows("b2"), batch_id="b2")
    assert [h.batch_id for h in second.history("std.decl")] == ["b0", "b1", "b2"]
    assert first.has_batch("std.decl", "b1") and second.has_batch("std.decl", "b2")


def test_tables_get_the_commit_properties(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    with lake.table("std.decl").transaction() as tx:
        tx.set_properties({"write.metadata.previous-versions-max": "999"})
    props = lake.ensure_table("std.decl", SCHEMA).properties
    assert {k: props.get(k) for k in TABLE_PROPERTIES} == TABLE_PROPERTIES


def test_metadata_files_stay_bounded(lake: Lake) -> None:
    fill(lake, 30)
    log = lake.table("std.decl").metadata.metadata_log
    assert len(log) == int(TABLE_PROPERTIES["write.metadata.previous-versions-max"])
