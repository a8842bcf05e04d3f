"""Planning a snapshot's data files: ours (each manifest read once) gives what pyiceberg's gives."""

from __future__ import annotations

import pyarrow as pa
import pytest
from cachetools import LRUCache
from pyiceberg.manifest import ManifestFile

from sciti.lake import Lake
from sciti.lake import files as lake_files
from sciti.lake.files import snapshot_files
from tests.lake.test_query import add_positional_delete

SCHEMA = pa.schema([pa.field("record_id", pa.string(), nullable=False), pa.field("office", pa.string())])


def rows(*ids: str, office: str = "A") -> pa.Table:
    return pa.table({"record_id": list(ids), "office": [office] * len(ids)})


def make_history(lake: Lake, appends: int = 6) -> None:
    """Table std.t with appends of two rows each (R0a, R0b, ...), an upsert of R1a and R9 and a
    delete of R2b (manifests holding deleted entries), then a compaction."""
    lake.ensure_table("std.t", SCHEMA)
    for n in range(appends):
        lake.append("std.t", rows(f"R{n}a", f"R{n}b"), batch_id=f"b{n}")
    lake.upsert("std.t", rows("R1a", "R9", office="Z"), key=["record_id"], batch_id="u")
    lake.delete("std.t", "record_id = 'R2b'", batch_id="d")
    lake.compact("std.t", target_file_rows=1000)


def pyiceberg_paths(lake: Lake, snapshot_id: int) -> list[str]:
    return [t.file.file_path for t in lake.table("std.t").scan(snapshot_id=snapshot_id).plan_files()]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The manifests read from disk, in order."""
    seen: list[str] = []
    fetch = ManifestFile.fetch_manifest_entry

    def counted(self: ManifestFile, io, discard_deleted: bool = True):
        seen.append(self.manifest_path)
        return fetch(self, io, discard_deleted=discard_deleted)

    monkeypatch.setattr(ManifestFile, "fetch_manifest_entry", counted)
    return seen


def test_every_snapshot_plans_as_pyiceberg_does(any_lake: Lake) -> None:
    """Appends, an upsert and a delete (manifests holding deleted entries), a compaction and a
    replace: every snapshot of the history, the current one and those before it, gives the same
    files in the same order."""
    lake = any_lake
    make_history(lake)
    lake.append("std.t", rows("R10"), batch_id="b10")
    table = lake.table("std.t")
    assert len(table.metadata.snapshots) >= 10
    for snap in table.metadata.snapshots:
        ours = snapshot_files(table, snap)
        assert ours.paths == pyiceberg_paths(lake, snap.snapshot_id), snap.snapshot_id
        assert ours.snapshot_id == snap.snapshot_id
    current = snapshot_files(table, table.current_snapshot())
    assert current.row_count == 13  # 12 appended, R9 added, R2b deleted, R10 appended
    lake.replace("std.t", rows("X"), batch_id="r")
    table = lake.table("std.t")
    assert snapshot_files(table, table.current_snapshot()).paths == pyiceberg_paths(
        lake, table.current_snapshot().snapshot_id
    )
    assert snapshot_files(table, table.current_snapshot()).row_count == 1


def test_a_manifest_is_read_once(lake: Lake, reads: list[str]) -> None:
    """Each append adds a manifest; planning again reads only the one the last append added."""
    lake.ensure_table("std.t", SCHEMA)
    for n in range(5):
        lake.append("std.t", rows(f"R{n}"), batch_id=f"b{n}")
    table = lake.table("std.t")
    first = snapshot_files(table, table.current_snapshot())
    assert len(first.tasks) == 5 and len(reads) == 5
    reads.clear()
    assert snapshot_files(table, table.current_snapshot()).paths == first.paths
    assert reads == []
    lake.append("std.t", rows("R5"), batch_id="b5")
    table = lake.table("std.t")
    assert len(snapshot_files(table, table.current_snapshot()).tasks) == 6
    assert len(reads) == 1


def test_the_cache_is_bounded_and_what_it_drops_is_read_again(
    lake: Lake, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lake_files, "_manifests", LRUCache(maxsize=3, getsizeof=len))
    lake.ensure_table("std.t", SCHEMA)
    for n in range(5):
        lake.append("std.t", rows(f"R{n}"), batch_id=f"b{n}")
    table = lake.table("std.t")
    expected = pyiceberg_paths(lake, table.current_snapshot().snapshot_id)
    reads.clear()
    assert snapshot_files(table, table.current_snapshot()).paths == expected
    assert len(lake_files._manifests) == 3 and lake_files._manifests.currsize == 3
    reads.clear()
    assert snapshot_files(table, table.current_snapshot()).paths == expected
    assert reads  # the two dropped were read again


def test_delete_files_are_planned_by_pyiceberg(lake: Lake) -> None:
    """A positional delete file (another engine's merge-on-read delete) is matched to its data file,
    whether it comes in a manifest of its own or, as here, among the data files."""
    lake.ensure_table("std.t", SCHEMA)
    lake.append("std.t", rows("a", "b", "c"), batch_id="b1")
    add_positional_delete(lake, "std.t", 1)
    table = lake.table("std.t")
    planned = snapshot_files(table, table.current_snapshot())
    assert planned.has_deletes and len(planned.tasks) == 1
    current = table.current_snapshot().snapshot_id
    assert [t.file.file_path for t in planned.tasks] == pyiceberg_paths(lake, current)
