"""THE kill -9 test: a real ingest process killed at random moments, restarted until done.

Afterwards every good record is in the lake exactly once, every bad row is quarantined exactly
once, every batch is committed and its counts reconcile. The lake is read through pyiceberg scans
(the table's committed snapshots), so a half-written file that no snapshot references is ignored,
exactly as any engine would.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from sciti.acquire import list_batches, list_quarantine
from sciti.ops import Batch, session_scope
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, rows, write_connector
from tests.conftest import ROOT

FILES = 20
ROWS_PER_FILE = 10_000  # enough work per batch that kills land inside batches on a fast path
KILLS = 20


def _make_inputs(folder: Path) -> tuple[set[str], int]:
    """Files of valid rows with a bad row every 500: returns the good ids and the number of bad rows."""
    folder.mkdir()
    good: set[str] = set()
    bad = 0
    for f in range(FILES):
        lines = [HEADER]
        for i in range(ROWS_PER_FILE):
            did = f"C{f}-{i:05d}"
            if i % 500 == 7:
                lines.append(f"{did},2024-02-31,KRPUS,1,USD,851713,")  # no 31 February: quarantined
                bad += 1
            else:
                lines.append(f"{did},2024-01-{1 + i % 28:02d},KRPUS,{i}.5,USD,851713,")
                good.add(did)
        (folder / f"part-{f}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return good, bad


def _wait_for_running_batch(db_url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with session_scope(db_url) as s:
                if s.scalar(select(func.count()).select_from(Batch).where(Batch.status == "running")):
                    return
        except OperationalError:  # the database may not exist yet on the first run
            pass
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_every_record_exactly_once(acq_settings, tmp_path: Path) -> None:
    write_connector(acq_settings, DECL_CONNECTOR)
    inputs = tmp_path / "inputs"
    good, bad = _make_inputs(inputs)
    env = {
        **os.environ,
        "SCITI_HOME": str(acq_settings.home),
        "SCITI_CONNECTORS_DIR": str(acq_settings.connectors_dir),
        "SCITI_CODELISTS_DIR": str(acq_settings.codelists_dir),
        "SCITI_LOG_JSON": "true",
    }
    command = [sys.executable, "-m", "sciti.cli.main", "ingest", "decl", str(inputs), "--json"]
    rng = random.Random(20260522)
    killed = 0
    states: collections.Counter[str] = collections.Counter()  # what the kills left behind
    for attempt in range(KILLS):
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt % 2:  # any moment, startup included
            time.sleep(rng.uniform(0.2, 5.0))
        else:  # inside a batch, whatever the machine's load: wait until one is running
            _wait_for_running_batch(acq_settings.resolved_ops_db_url, proc)
            time.sleep(rng.uniform(0.0, 0.15))  # batches are short: kill soon after one starts
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        found = {b["status"] for b in list_batches(acq_settings, connector="decl")}
        states["mid-batch" if "running" in found else "between batches"] += 1
    for _ in range(5):  # restart until a run completes
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr
    assert killed >= 8, f"the process should have been killed while working, not after: {states}"
    assert states["mid-batch"] >= 3, f"too few kills landed inside a batch: {states}"

    for ident, count in (("std.declarations", len(good)), ("std.declaration_items", len(good))):
        ids = collections.Counter(r["record_id"] for r in rows(acq_settings, ident))
        assert len(ids) == count, ident
        assert max(ids.values()) == 1, f"{ident}: a record was stored twice"
    assert {r["declaration_id"] for r in rows(acq_settings, "std.declarations")} == good

    batches = list_batches(acq_settings, connector="decl")
    assert len(batches) == FILES
    assert all(b["status"] == "committed" and b["reconciled"] for b in batches)
    assert sum(b["received"] for b in batches) == FILES * ROWS_PER_FILE
    raw = collections.Counter(r["batch_id"] for r in rows(acq_settings, "raw.decl"))
    assert set(raw) == {b["batch_id"] for b in batches} and max(raw.values()) == 1

    entries = list_quarantine(acq_settings, limit=10_000)
    assert len(entries) == bad
    assert len({(q["batch_id"], q["locator"]) for q in entries}) == bad
    assert all("not a valid date" in q["reason"] for q in entries)
