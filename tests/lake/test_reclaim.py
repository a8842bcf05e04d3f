"""Upkeep gives the disk back: files only expired snapshots used, and old orphan files, are removed;
nothing a kept snapshot, a concurrent writer or a staged file still needs is ever touched."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from sciti.lake import Lake, query
from sciti.lake import catalog as lake_catalog
from sciti.lake.files import local_path, snapshot_files
from sciti.lake.register import data_folder
from sciti.lake.upkeep import FREED, UpkeepPolicy, upkeep_pass

from .conftest import make_lake
from .test_maintain import fill, rows

DAY = 86_400


def on_disk(lake: Lake, ident: str = "std.decl") -> set[Path]:
    """Every data, manifest and manifest-list file of the table (metadata JSON files aside)."""
    root = Path(local_path(lake.table(ident).location()))
    found = set((root / "data").rglob("*"))
    found.update(p for p in (root / "metadata").rglob("*") if not p.name.endswith(".metadata.json"))
    return {p.resolve() for p in found if p.is_file()}


def used(lake: Lake, ident: str = "std.decl") -> set[Path]:
    """What the table's snapshots refer to: manifest lists, manifests, data files."""
    table = lake.table(ident)
    found = set()
    for snap in table.metadata.snapshots:
        found.add(snap.manifest_list)
        for manifest in snap.manifests(table.io):
            found.add(manifest.manifest_path)
        found.update(t.file.file_path for t in snapshot_files(table, snap).tasks)
    return {Path(local_path(p)).resolve() for p in found}


def age(path: Path | str, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def ids(lake: Lake) -> list[str]:
    return sorted(r["record_id"] for r in query(lake, "SELECT record_id FROM std.decl").to_pylist())


def test_expiry_removes_the_files_only_expired_snapshots_used(any_lake: Lake) -> None:
    fill(any_lake, 6)
    any_lake.upsert("std.decl", rows("b1", 1), key="record_id")  # rewrites b1's file
    any_lake.compact("std.decl", target_file_rows=100)  # rewrites everything into one file
    before = on_disk(any_lake)
    expected = ids(any_lake)

    result = any_lake.expire_snapshots("std.decl", timedelta(0), retain_last=1)

    assert result.expired == 7
    assert on_disk(any_lake) == used(any_lake)  # nothing left behind, nothing needed is gone
    assert result.removed.files == len(before - on_disk(any_lake)) > 6 + 1  # the old data files too
    assert result.removed.bytes > 0
    assert ids(any_lake) == expected


def test_kept_snapshots_still_read_back_whole(lake: Lake) -> None:
    fill(lake, 4)
    kept = lake.table("std.decl").metadata.snapshots[1].snapshot_id
    lake.compact("std.decl", target_file_rows=100)
    lake.expire_snapshots("std.decl", timedelta(0), retain_last=1, protected={kept})
    assert on_disk(lake) == used(lake)
    assert query(lake, "SELECT count(*) AS n FROM std.decl", as_of=kept).to_pylist()[0]["n"] == 4


def test_expiry_with_nothing_to_expire_removes_nothing(lake: Lake) -> None:
    fill(lake, 3)
    before = on_disk(lake)
    result = lake.expire_snapshots("std.decl", timedelta(days=1), retain_last=1)
    assert (result.expired, result.removed.files) == (0, 0)
    assert on_disk(lake) == before


def test_a_commit_from_another_process_during_the_clean_up_keeps_its_files(settings, monkeypatch) -> None:
    upkeep, feed = make_lake(settings), make_lake(settings)
    fill(upkeep, 4)
    upkeep.compact("std.decl", target_file_rows=100)
    original = lake_catalog.remove_expired

    def remove_expired(table, expired, reach):  # the feed commits after the expiry, before clean-up
        feed.append("std.decl", rows("late", 3), batch_id="late")
        return original(table, expired, reach)  # with the table as upkeep saw it: one commit behind

    monkeypatch.setattr(lake_catalog, "remove_expired", remove_expired)
    upkeep.expire_snapshots("std.decl", timedelta(0), retain_last=1)
    assert on_disk(feed) == used(feed)
    assert len(ids(feed)) == 8 + 3


def test_maintain_removes_old_orphans_only(lake: Lake) -> None:
    fill(lake, 2)
    folder = data_folder(lake.table("std.decl"))
    abandoned = lake.stage("std.decl", rows("crashed", 5))  # written, never committed
    waiting = lake.stage("std.decl", rows("waiting", 5))  # a caller will still commit it
    young = lake.stage("std.decl", rows("young", 5))  # a write in progress
    for f in abandoned + waiting:
        age(local_path(f.file_path), days=4)
    beside = folder.parent / "notes.txt"  # not a data or metadata file: never ours to remove
    beside.write_text("kept")
    age(beside, days=30)
    old_used = next(iter(used(lake)))
    age(old_used, days=30)  # old but referred to

    result = lake.maintain("std.decl", keep_last=1, staged=[waiting[0].file_path])

    gone = {Path(local_path(f.file_path)).resolve() for f in abandoned}
    assert result.orphans.files == len(gone) and result.orphans.bytes > 0
    assert not gone & on_disk(lake)
    for f in waiting + young:
        assert Path(local_path(f.file_path)).exists()
    assert beside.exists() and old_used.exists()
    lake.commit_staged("std.decl", waiting, batch_id="waiting")  # the kept one still commits
    assert len(ids(lake)) == 4 + 5


def test_orphan_grace_is_the_callers(lake: Lake) -> None:
    fill(lake, 1)
    orphan = lake.stage("std.decl", rows("crashed", 2))
    assert lake.maintain("std.decl", orphan_days=0).orphans.files == len(orphan)
    with pytest.raises(Exception, match="orphans of -1"):
        lake.maintain("std.decl", orphan_days=-1)


def test_an_upkeep_pass_keeps_staged_files_and_counts_what_it_freed(lake: Lake) -> None:
    fill(lake, 3)
    staged = lake.stage("std.decl", rows("part", 4))
    crashed = lake.stage("std.decl", rows("crashed", 4))
    for f in staged + crashed:
        age(local_path(f.file_path), days=10)
    before = FREED.labels(table="std.decl")._value.get()
    policy = UpkeepPolicy(keep_days=0, keep_last=1, keep_all_hours=0, target_file_rows=1_000)

    results, failed = upkeep_pass(lake, policy, staged=lambda: [local_path(f.file_path) for f in staged])

    assert failed == []
    result = next(r for r in results if r.ident == "std.decl")
    assert result.removed.files > 0 and result.orphans.files == len(crashed)
    freed = result.removed.bytes + result.orphans.bytes
    assert FREED.labels(table="std.decl")._value.get() == before + freed
    assert on_disk(lake) == used(lake) | {Path(local_path(f.file_path)).resolve() for f in staged}


def test_staged_files_unknown_means_no_pass(lake: Lake) -> None:
    fill(lake, 3)

    def ops_down() -> list[str]:
        raise ConnectionError("operational database unreachable")

    with pytest.raises(ConnectionError):
        upkeep_pass(lake, UpkeepPolicy(keep_days=0, keep_last=1, keep_all_hours=0), staged=ops_down)
    assert len(lake.table("std.decl").metadata.snapshots) == 3


def test_passes_one_after_another_remember_only_what_the_table_still_uses(lake: Lake) -> None:
    tight = {"keep_days": 0, "keep_last": 1, "keep_all_hours": 0}
    fill(lake, 3)
    lake.maintain("std.decl", **tight)
    lake.append("std.decl", rows("b3"), batch_id="b3")
    lake.upsert("std.decl", rows("b0", 1), key="record_id")
    result = lake.maintain("std.decl", **tight)
    assert result.expired == 3 and result.removed.files > 0
    assert on_disk(lake) == used(lake)
    assert len(ids(lake)) == 8
    reach = lake._reach["std.decl"]
    assert set(reach._lists) == {s.manifest_list for s in lake.table("std.decl").metadata.snapshots}


def test_a_warehouse_path_with_spaces_and_escapes_is_swept_as_pyiceberg_spells_it(tmp_path: Path) -> None:
    folder = tmp_path / "customs%20data 2026"
    folder.mkdir()
    lake = Lake(f"sqlite:///{tmp_path}/catalog.db", f"file://{folder}/warehouse")
    lake.ensure_zones()
    fill(lake, 3)
    orphan = lake.stage("std.decl", rows("crashed", 2))
    for path in (folder / "warehouse").rglob("*"):
        if path.is_file():
            age(path, days=10)  # the table's own files are as old as the orphan
    result = lake.maintain("std.decl", keep_days=0, keep_last=1, keep_all_hours=0)
    assert result.orphans.files == len(orphan) and result.removed.files > 0
    assert on_disk(lake) == used(lake)
    assert len(ids(lake)) == 6


def test_no_orphan_is_looked_for_when_a_file_the_table_reads_is_not_found(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sciti.lake import reclaim

    fill(lake, 2)
    lake.compact("std.decl")  # so the pass below does not replace the file it must find
    orphan = lake.stage("std.decl", rows("crashed", 2))
    age(local_path(orphan[0].file_path), days=10)
    live = Path(local_path(lake.table("std.decl").scan().plan_files()[0].file.file_path))
    listing = reclaim._files_under

    def spelled_otherwise(folder: Path):  # as if the warehouse were reached through another path
        return [f for f in listing(folder) if Path(f[0]) != live]

    monkeypatch.setattr(reclaim, "_files_under", spelled_otherwise)
    result = lake.maintain("std.decl", orphan_days=0)
    assert result.orphans.files == 0
    assert Path(local_path(orphan[0].file_path)).exists() and live.exists()
    assert "orphan files not looked for" in caplog.text
