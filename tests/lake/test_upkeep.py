"""Lake upkeep on a schedule: every table compacted and expired, protected snapshots kept, one
broken table never stopping the others. (The server runs it in its background jobs process:
tests/test_background.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sciti.lake import Lake, query
from sciti.lake.files import local_path, snapshot_files
from sciti.lake.upkeep import FAILURES, LakeUpkeep, UpkeepPolicy, upkeep_pass

from .test_maintain import SCHEMA, rows

# Keep nothing old: only the newest snapshot and what is protected survive a pass.
TIGHT = UpkeepPolicy(keep_days=0, keep_last=1, keep_all_hours=0, target_file_rows=1_000)


def fill(lake: Lake, ident: str, batches: int) -> list[int]:
    lake.ensure_table(ident, SCHEMA)
    return [lake.append(ident, rows(f"{ident}-b{i}"), batch_id=f"{ident}-b{i}") for i in range(batches)]


def snapshots(lake: Lake, ident: str) -> set[int]:
    return {s.snapshot_id for s in lake.table(ident).metadata.snapshots}


def n_rows(lake: Lake, ident: str, as_of: int | None = None) -> int:
    return query(lake, f"SELECT count(*) AS n FROM {ident}", as_of=as_of).to_pylist()[0]["n"]


def test_a_pass_maintains_every_table_and_keeps_protected_snapshots(lake: Lake) -> None:
    decl = fill(lake, "std.decl", 5)
    fill(lake, "risk.scores", 4)
    trained_on = decl[1]  # say a model learnt from the lake as it was after the second batch

    results, failed = upkeep_pass(lake, TIGHT, protected=lambda: {"std.decl": {trained_on}})

    assert failed == [] and {r.ident for r in results} >= {"std.decl", "risk.scores"}
    for ident, rows_now in (("std.decl", 10), ("risk.scores", 8)):
        assert n_rows(lake, ident) == rows_now  # upkeep never changes the data
        files = snapshot_files(lake.table(ident), lake.table(ident).current_snapshot()).tasks
        assert len(files) == 1  # five (four) small files became one
    assert snapshots(lake, "risk.scores") == {lake.table("risk.scores").current_snapshot().snapshot_id}
    current = lake.table("std.decl").current_snapshot().snapshot_id
    assert snapshots(lake, "std.decl") == {current, trained_on}
    assert n_rows(lake, "std.decl", as_of=trained_on) == 4  # the training data, read back as it was


def test_one_broken_table_does_not_stop_the_others(lake: Lake) -> None:
    fill(lake, "std.decl", 3)
    fill(lake, "std.broken", 3)
    table = lake.table("std.broken")
    lost = snapshot_files(table, table.current_snapshot()).tasks[0].file.file_path
    Path(local_path(lost)).unlink()  # a data file lost on disk: compaction cannot read it
    before = FAILURES.labels(table="std.broken")._value.get()

    results, failed = upkeep_pass(lake, TIGHT)

    assert failed == ["std.broken"]
    assert FAILURES.labels(table="std.broken")._value.get() == before + 1
    assert "std.decl" in {r.ident for r in results} and n_rows(lake, "std.decl") == 6


def test_protected_snapshots_unknown_means_no_pass(lake: Lake) -> None:
    fill(lake, "std.decl", 3)

    def registry_down() -> dict[str, set[int]]:
        raise ConnectionError("operational database unreachable")

    with pytest.raises(ConnectionError):
        upkeep_pass(lake, TIGHT, protected=registry_down)
    assert len(snapshots(lake, "std.decl")) == 3  # nothing expired without knowing what to keep


def test_the_schedule_runs_and_stops(lake: Lake) -> None:
    fill(lake, "std.decl", 3)
    upkeep = LakeUpkeep(lake, every_hours=1.0, policy=TIGHT, first_delay=0.0)
    upkeep.start()
    try:
        deadline = time.monotonic() + 60
        while upkeep.passes < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upkeep.passes == 1
    finally:
        upkeep.stop()
    assert not upkeep.is_alive()
    assert len(snapshots(lake, "std.decl")) == 1 and n_rows(lake, "std.decl") == 6
