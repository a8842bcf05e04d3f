"""A commit starts from the table the lake holds while the catalog still names its metadata file,
instead of reading and parsing that file again as pyiceberg's ``commit_table`` does (decision 0125);
a commit made meanwhile by another writer is read first, and nothing of it is lost."""

from __future__ import annotations

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table.metadata import TableMetadataUtil

from sciti.lake import Lake
from tests.lake.test_files import SCHEMA, rows


def ids(lake: Lake) -> list[str]:
    return sorted(lake.table("std.t").scan().to_arrow().column("record_id").to_pylist())


def test_a_commit_does_not_read_the_metadata_file_it_holds(any_lake: Lake) -> None:
    lake = any_lake
    lake.ensure_table("std.t", SCHEMA)
    lake.append("std.t", rows("A"), batch_id="b1")
    held = lake.table("std.t")
    held.io.delete(held.metadata_location)  # the proof: nothing may read it now
    stock = SqlCatalog("sciti", uri=lake.catalog_uri, warehouse=lake.warehouse)
    with pytest.raises(OSError):
        stock.load_table("std.t")  # pyiceberg as it comes reads it, and so would its commit
    lake.append("std.t", rows("B"), batch_id="b2")
    fresh = Lake(lake.catalog_uri, lake.warehouse)  # another process: reads the new file
    assert ids(fresh) == ["A", "B"]
    assert fresh.table("std.t").metadata == lake.table("std.t").metadata


def test_a_commit_by_another_writer_is_read_before_ours(any_lake: Lake) -> None:
    lake = any_lake
    other = Lake(lake.catalog_uri, lake.warehouse)
    lake.ensure_table("std.t", SCHEMA)
    lake.append("std.t", rows("A"), batch_id="b1")
    other.append("std.t", rows("B"), batch_id="b2")
    lake.upsert("std.t", rows("A", "C", office="Z"), key=["record_id"], batch_id="b3")
    other.append("std.t", rows("D"), batch_id="b4")
    for reader in (lake, other, Lake(lake.catalog_uri, lake.warehouse)):
        assert ids(reader) == ["A", "B", "C", "D"]
    kept = lake.table("std.t").metadata
    batches = [s.summary["sciti.batch-id"] for s in kept.snapshots if "sciti.batch-id" in s.summary]
    assert batches[-4:] == ["b1", "b2", "b3", "b4"]
    assert TableMetadataUtil.parse_raw(kept.model_dump_json()) == other.table("std.t").metadata
