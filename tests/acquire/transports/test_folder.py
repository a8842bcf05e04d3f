"""Watched drop folder: complete files are ingested once and moved aside, never deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sciti.acquire.transports import FolderSpec, FolderWatcher, parse_transport

CSV = (
    "Declaration ID,Version,Office,Amount,Currency\n"
    "D-1,1,HKG01,100.50,HKD\n"
    "D-2,1,HKG01,2000,USD\n"
    "D-3,one,HKG02,5,HKD\n"  # version is not a number: quarantined, the rest stored
)


def watcher(tsettings, runner, name="drop_decl", **spec) -> FolderWatcher:
    from sciti.acquire import load_connector

    full = {"type": "folder", "path": "decl", "poll_seconds": 0.1, "settle_seconds": 0, **spec}
    parsed = parse_transport(full, connector=name)
    assert isinstance(parsed, FolderSpec)
    return FolderWatcher(tsettings, load_connector(tsettings, name), parsed, runner)


def lake_rows(runner, ident="std.declarations") -> list[dict]:
    if not runner.lake.exists(ident):
        return []
    return runner.lake.table(ident).scan().to_arrow().to_pylist()


def test_complete_file_is_ingested_then_moved_to_processed(tsettings, runner):
    w = watcher(tsettings, runner)
    w.scan_once()  # creates the folders
    (w.root / "day1.csv").write_text(CSV, encoding="utf-8")
    [taken] = w.scan_once()
    assert taken.ok and taken.moved_to.parent.parent == w.root / "processed"
    assert taken.moved_to.read_text(encoding="utf-8") == CSV
    [result] = taken.results
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 3, 2, 1)
    assert sorted(r["declaration_id"] for r in lake_rows(runner)) == ["D-1", "D-2"]
    assert not (w.root / "day1.csv").exists()
    assert w.scan_once() == []


def test_same_content_again_is_a_duplicate_and_both_files_are_kept(tsettings, runner):
    w = watcher(tsettings, runner)
    w.scan_once()
    (w.root / "a.csv").write_text(CSV, encoding="utf-8")
    w.scan_once()
    (w.root / "a.csv").write_text(CSV, encoding="utf-8")  # same name, same bytes, sent twice
    [again] = w.scan_once()
    assert [r.status for r in again.results] == ["duplicate"]
    assert len(list((w.root / "processed").rglob("a*.csv"))) == 2
    assert len(lake_rows(runner)) == 2


def test_crash_between_ingest_and_move_is_harmless(tsettings, runner):
    """The runner committed but the file was not moved (process killed): the rescan is a no-op."""
    w = watcher(tsettings, runner)
    w.scan_once()
    path = w.root / "b.csv"
    path.write_text(CSV, encoding="utf-8")
    [first] = runner.ingest_path(w.connector, path)  # ... and then the process died
    assert first.status == "committed"
    [taken] = w.scan_once()
    assert [r.status for r in taken.results] == ["duplicate"] and taken.ok
    assert len(lake_rows(runner)) == 2


@pytest.mark.parametrize("name", [".c.csv", "c.csv.part", "c.csv.tmp", "c.csv.partial", "c.csv.crdownload"])
def test_files_still_being_written_are_left_alone(tsettings, runner, name):
    w = watcher(tsettings, runner)
    w.scan_once()
    (w.root / name).write_text(CSV, encoding="utf-8")
    assert w.scan_once() == []
    assert (w.root / name).exists()


def test_rename_into_place_is_taken(tsettings, runner):
    w = watcher(tsettings, runner)
    w.scan_once()
    (w.root / "d.csv.part").write_text(CSV, encoding="utf-8")
    assert w.scan_once() == []
    os.replace(w.root / "d.csv.part", w.root / "d.csv")
    assert [t.name for t in w.scan_once()] == ["d.csv"]


def test_marker_convention(tsettings, runner):
    w = watcher(tsettings, runner, require_marker=True)
    w.scan_once()
    (w.root / "e.csv").write_text(CSV, encoding="utf-8")
    assert w.scan_once() == []
    (w.root / "e.csv.done").touch()
    [taken] = w.scan_once()
    assert taken.ok
    assert taken.moved_to.with_name(taken.moved_to.name + ".done").exists()
    assert not (w.root / "e.csv.done").exists()


@pytest.mark.parametrize(("age_seconds", "taken"), [(0, False), (120, True)])
def test_a_file_is_taken_once_it_has_settled(tsettings, runner, age_seconds, taken):
    w = watcher(tsettings, runner, settle_seconds=60)
    w.scan_once()
    path = w.root / "f.csv"
    path.write_text(CSV, encoding="utf-8")
    old = time.time() - age_seconds
    os.utime(path, (old, old))
    assert bool(w.scan_once()) is taken
    assert path.exists() is not taken


def test_a_file_whose_batch_fails_goes_to_failed_with_the_reason(tsettings, runner):
    w = watcher(tsettings, runner, name="drop_broken", path="broken")
    w.scan_once()
    (w.root / "g.csv").write_text(CSV, encoding="utf-8")
    assert w.scan_once() == [] and w.scan_once() == []  # retried: a failure may be passing
    assert (w.root / "g.csv").exists()
    [taken] = w.scan_once()  # the third failure sets it aside
    assert not taken.ok
    assert taken.moved_to == w.root / "failed" / "g.csv"
    assert taken.moved_to.read_text(encoding="utf-8") == CSV  # the data is kept, never deleted
    reason = (w.root / "failed" / "g.csv.error.txt").read_text(encoding="utf-8")
    assert "no_such_function" in reason


def test_start_all_runs_the_folder_transport_until_stopped(tsettings):
    from sciti.acquire.transports import start_all

    drop = Path(tsettings.resolved_drop_dir) / "decl"
    drop.mkdir(parents=True)
    (drop / "h.csv.part").write_text(CSV, encoding="utf-8")
    os.replace(drop / "h.csv.part", drop / "h.csv")
    running = start_all(tsettings)
    try:
        names = {w.name for w in running.workers}
        assert "sciti-folder-drop_decl" in names
        deadline = time.monotonic() + 60
        while (drop / "h.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list((drop / "processed").rglob("h.csv"))
    finally:
        running.stop()
    assert not any(w.is_alive() for w in running.workers)


def test_a_file_the_connector_does_not_take_stays_and_is_logged_once(tsettings, runner, caplog):
    w = watcher(tsettings, runner)
    w.scan_once()
    (w.root / "notes.txt").write_text("junk", encoding="utf-8")
    (w.root / "day2.CSV").write_text(CSV, encoding="utf-8")  # matches *.csv (case-insensitive)
    with caplog.at_level("WARNING", logger="sciti.transports.folder"):
        assert [t.name for t in w.scan_once()] == ["day2.CSV"]
        assert w.scan_once() == [] and w.scan_once() == []
    assert (w.root / "notes.txt").read_text(encoding="utf-8") == "junk"  # untouched, in place
    assert not list((w.root / "processed").rglob("notes*")) and not list((w.root / "failed").iterdir())
    logged = [r for r in caplog.records if "not taken" in r.getMessage()]
    assert [(r.file, r.files) for r in logged] == [("notes.txt", "*.csv")]  # type: ignore[attr-defined]
    assert list(w.not_taken) == ["notes.txt"]
    (w.root / "notes.txt").unlink()
    w.scan_once()
    assert w.not_taken == {}
