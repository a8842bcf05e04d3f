"""Commit cost levers and upkeep: cached tables, has_batch after expiry, Lake.maintain.

Also: thinning old history to one snapshot per hour, and compaction committing on top of a
writer in another process (a second Lake on the same catalog and warehouse).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from sciti.lake import Lake, LakeError, query
from sciti.lake import writes as lake_writes
from sciti.lake.catalog import TABLE_PROPERTIES
from sciti.lake.files import local_path, snapshot_files
from sciti.lake.register import data_folder
from sciti.lake.writes import snapshots_to_expire

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
    assert any_lake.expire_snapshots("std.decl", timedelta(0), retain_last=2).expired == 5
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


# --- choosing snapshots to expire (plain data) -------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def every_10_minutes(days: int) -> list[tuple[int, int]]:
    """(timestamp_ms, id) from ``days`` back up to NOW; the id is the minute offset from NOW."""
    steps = days * 24 * 6
    return [(ms(NOW - timedelta(minutes=10 * k)), -10 * k) for k in range(steps, -1, -1)]


def at(day: int, hour: int, minute: int) -> int:
    """Id of the synthetic snapshot at that time of March 2026."""
    t = datetime(2026, 3, day, hour, minute, tzinfo=UTC)
    return int((t - NOW).total_seconds() // 60)


def test_thinning_keeps_the_last_snapshot_of_each_hour() -> None:
    snaps = every_10_minutes(3)
    doomed = set(
        snapshots_to_expire(
            snaps,
            cutoff_ms=ms(NOW - timedelta(days=2)),
            keep_last=2,
            keep_all_after_ms=ms(NOW - timedelta(hours=1)),
        )
    )
    kept = [sid for _, sid in snaps if sid not in doomed]
    # From 11:30 (the keep-all edge) on everything; 11:00-11:29 keeps its newest, 11:20.
    window = [(11, 30), (11, 40), (11, 50), (12, 0), (12, 10), (12, 20), (12, 30)]
    assert kept[-8:] == [at(10, 11, 20), *(at(10, h, m) for h, m in window)]
    # Earlier hours keep their :50 only.
    assert at(10, 10, 50) in kept and at(10, 10, 40) in doomed
    # The oldest hour inside the retention starts at the cutoff (08 March 12:30): its newest stays.
    assert kept[0] == at(8, 12, 50) and at(8, 12, 30) in doomed and at(8, 12, 20) in doomed
    # 47 whole or partial hours from the cutoff to 11:00, 11:20, and the 7 of the window.
    assert len(kept) == 47 + 1 + 7


@pytest.mark.parametrize(
    ("keep_all", "keep_last", "protected", "kept"),
    [
        (None, 2, (), [50, 60]),  # no thinning: only the cutoff and keep_last count
        (None, 1, (10, 30), [10, 30, 60]),  # protected ids survive the cutoff
        (None, 0, (), []),
        (timedelta(days=1), 1, (), [60]),  # the cutoff wins over a longer keep-all window
    ],
)
def test_expiry_keeps_the_newest_and_the_protected(
    keep_all: timedelta | None, keep_last: int, protected: tuple[int, ...], kept: list[int]
) -> None:
    snaps = [(ms(NOW - timedelta(minutes=70 - i)), i) for i in range(10, 70, 10)]  # 10 ... 60
    doomed = snapshots_to_expire(
        snaps,
        cutoff_ms=ms(NOW),
        keep_last=keep_last,
        keep_all_after_ms=None if keep_all is None else ms(NOW - keep_all),
        protected=protected,
    )
    assert doomed == [sid for _, sid in snaps if sid not in kept]  # oldest first


def test_expiry_with_equal_timestamps_keeps_the_later_commit() -> None:
    hour = ms(NOW - timedelta(hours=5))
    snaps = [(hour, 7), (hour, 3), (hour + 1, 9), (hour + 1, 1)]  # commit order, ids in no order
    doomed = snapshots_to_expire(snaps, cutoff_ms=0, keep_last=0, keep_all_after_ms=ms(NOW))
    assert doomed == [7, 3, 9]


# --- thinning a real table ---------------------------------------------------------------------


def test_maintain_thins_history_and_keeps_refs_and_protected(lake: Lake) -> None:
    fill(lake, 6)
    table = lake.table("std.decl")
    ids = [s.snapshot_id for s in table.metadata.snapshots]
    times = {s.snapshot_id: s.timestamp_ms for s in table.metadata.snapshots}
    table.manage_snapshots().create_tag(ids[2], "trained-on").commit()
    # keep_all_hours=0: everything here is older than the window, so each hour keeps its newest.
    result = lake.maintain("std.decl", keep_days=1, keep_last=1, keep_all_hours=0, protected={ids[0]})
    meta = lake.table("std.decl").metadata
    current = meta.current_snapshot_id
    times[current] = meta.snapshots[-1].timestamp_ms  # the compaction, newest of its hour
    hour_heads = {ms // 3_600_000: sid for sid, ms in times.items()}  # in commit order: newest wins
    left = [s.snapshot_id for s in meta.snapshots]
    assert set(left) == {ids[0], ids[2], current, *hour_heads.values()}  # protected, tagged, current
    assert result.snapshots_left == len(left) and result.expired == 7 - len(left)  # 6 appends + compact
    assert count(lake) == 12
    assert all(lake.has_batch("std.decl", f"b{i}") for i in range(6))
    # Time travel to an expired snapshot's moment lands on the latest snapshot kept before it.
    gone = [sid for sid in ids if sid not in left]
    assert gone  # unless the test ran across five hour boundaries
    kept_before = [sid for sid in left if times[sid] <= times[gone[-1]]]
    assert lake.snapshot_at("std.decl", times[gone[-1]]) == kept_before[-1]


def test_maintain_keeps_everything_inside_the_keep_all_window(lake: Lake) -> None:
    fill(lake, 4)
    result = lake.maintain("std.decl", keep_days=1, keep_last=1, keep_all_hours=1)
    assert (result.expired, result.snapshots_left) == (0, 5)


def test_privacy_style_expiry_still_leaves_only_the_current_snapshot(lake: Lake) -> None:
    fill(lake, 4)
    lake.delete("std.decl", "record_id = 'b0-0'")
    assert lake.expire_snapshots("std.decl", timedelta(0), retain_last=1).expired == 4
    meta = lake.table("std.decl").metadata
    assert [s.snapshot_id for s in meta.snapshots] == [meta.current_snapshot_id]
    assert count(lake) == 7


def test_maintain_refuses_a_negative_keep_all_window(lake: Lake) -> None:
    fill(lake, 1)
    with pytest.raises(LakeError, match="cannot keep"):
        lake.maintain("std.decl", keep_all_hours=-1)


# --- compaction racing a writer in another process --------------------------------------------


def record_ids(lake: Lake) -> list[str]:
    return [r["record_id"] for r in query(lake, "SELECT record_id FROM std.decl").to_pylist()]


def before_rewrite(monkeypatch: pytest.MonkeyPatch, action) -> None:
    """Run ``action`` once, when compaction starts writing its new files (before its commit)."""
    original = lake_writes.write_data_files
    pending = [action]

    def write_data_files(*args, **kwargs):
        if pending:
            pending.pop()()
        return original(*args, **kwargs)

    monkeypatch.setattr(lake_writes, "write_data_files", write_data_files)


def referenced_files(lake: Lake) -> set[Path]:
    table = lake.table("std.decl")
    paths = {p for s in table.metadata.snapshots for p in snapshot_files(table, s).paths}
    return {Path(str(local_path(p))).resolve() for p in paths}


def test_compaction_commits_on_top_of_a_concurrent_append(settings, monkeypatch) -> None:
    upkeep, feed = make_lake(settings), make_lake(settings)
    fill(upkeep, 4)
    before_rewrite(monkeypatch, lambda: feed.append("std.decl", rows("late", 3), batch_id="late"))
    result = upkeep.compact("std.decl", target_file_rows=100)
    assert (result.files_rewritten, result.files_after) == (4, 2)  # the late file stays as it is
    ids = record_ids(upkeep)
    assert len(ids) == 8 + 3 and len(set(ids)) == len(ids)
    assert {"late-0", "late-1", "late-2"} <= set(ids)
    assert [h.operation for h in feed.history("std.decl")][-2:] == ["append", "compact"]
    assert upkeep.table("std.decl").metadata_location == feed.table("std.decl").metadata_location
    upkeep.append("std.decl", rows("after", 1), batch_id="after")  # the cached table is current
    assert len(record_ids(feed)) == 12


def test_compaction_gives_up_when_its_files_were_rewritten_meanwhile(settings, monkeypatch) -> None:
    upkeep, other = make_lake(settings), make_lake(settings)
    fill(upkeep, 4)
    before_rewrite(monkeypatch, lambda: other.compact("std.decl", target_file_rows=100))
    with pytest.raises(LakeError, match="another writer"):
        upkeep.compact("std.decl", target_file_rows=100)
    ids = record_ids(upkeep)
    assert len(ids) == 8 and len(set(ids)) == 8
    on_disk = {p.resolve() for p in data_folder(upkeep.table("std.decl")).rglob("*.parquet")}
    assert on_disk == referenced_files(upkeep)  # the failed attempt left no files behind


def test_expiry_from_a_stale_view_spares_a_tag_made_meanwhile(settings) -> None:
    """The catalog applies the expiry to its newest metadata: what another process did counts."""
    upkeep, other = make_lake(settings), make_lake(settings)
    fill(upkeep, 4)
    stale = upkeep.table("std.decl")
    ids = [s.snapshot_id for s in stale.metadata.snapshots]
    other.expire_snapshots("std.decl", timedelta(0), retain_last=3)  # ids[0] already gone
    tagged = other.table("std.decl")
    tagged.manage_snapshots().create_tag(ids[1], "trained-on").commit()
    other.append("std.decl", rows("late"), batch_id="late")
    lake_writes.expire(stale, datetime.now(UTC), keep_last=1)
    left = [s.snapshot_id for s in upkeep.table("std.decl").metadata.snapshots]
    assert ids[1] in left and ids[0] not in left and ids[2] not in left
    assert count(upkeep) == 10
