"""Snapshot and log entries are shared between metadata versions, not deep-copied (decision 0123):
the metadata a commit leaves in memory equals the metadata read back from the catalog, through
appends, an upsert, a delete, a compaction and snapshot expiry."""

from __future__ import annotations

import copy
from datetime import timedelta

from pyiceberg.table.metadata import TableMetadataUtil

from sciti.lake import Lake, open_lake
from sciti.lake.shared_entries import SHARED
from tests.lake.test_files import SCHEMA, make_history, rows


def test_a_deep_copy_shares_the_entries_and_copies_the_rest(lake: Lake) -> None:
    lake.ensure_table("std.t", SCHEMA)
    for n in range(3):
        lake.append("std.t", rows(f"R{n}"), batch_id=f"b{n}")
    metadata = lake.table("std.t").metadata
    copied = copy.deepcopy(metadata)
    assert copied == metadata and copied is not metadata
    assert all(a is b for a, b in zip(copied.snapshots, metadata.snapshots, strict=True))
    assert all(a is b for a, b in zip(copied.snapshot_log, metadata.snapshot_log, strict=True))
    assert copied.schemas[0] is not metadata.schemas[0]  # what pyiceberg copies, it still copies
    assert copied.properties is not metadata.properties
    assert {type(metadata.snapshots[0]), type(metadata.snapshot_log[0])} <= set(SHARED)


def test_the_metadata_kept_in_memory_is_the_metadata_stored(any_lake: Lake) -> None:
    lake = any_lake
    make_history(lake, appends=8)
    lake.expire_snapshots("std.t", older_than=timedelta(0), retain_last=3)
    lake.append("std.t", rows("R10"), batch_id="b10")
    kept = lake.table("std.t").metadata
    fresh = open_lake(lake.catalog_uri, lake.warehouse).table("std.t").metadata
    assert fresh == kept
    # And it is the metadata a reader parses from the JSON written: nothing was changed in place.
    assert TableMetadataUtil.parse_raw(kept.model_dump_json()) == fresh
    assert len(kept.snapshots) == 4
    ids = sorted(lake.table("std.t").scan().to_arrow().column("record_id").to_pylist())
    appended = {f"R{n}{half}" for n in range(8) for half in "ab"}
    assert ids == sorted(appended - {"R2b"} | {"R9", "R10"})
