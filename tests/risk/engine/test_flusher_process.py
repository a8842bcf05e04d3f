"""The server's flusher runs in its own process: assessments reach the lake, and stopping the
server (or the server dying) ends the child after a last pass, losing nothing."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import time
from pathlib import Path

import psutil
from prometheus_client import REGISTRY

from sciti.risk.engine import FlusherProcess, RiskService
from sciti.risk.engine.flush_worker import NICENESS
from tests.risk.engine.test_store import heavy_cheap, lake_rows


def test_the_server_flusher_process_moves_every_answer_to_the_lake_and_stops(kcs, assessor) -> None:
    before = lake_rows(kcs)
    flushed = REGISTRY.get_sample_value("sciti_risk_buffer_flushed_total") or 0.0
    flusher = FlusherProcess(kcs)
    svc = RiskService(kcs, assessor, flusher=flusher)
    child = psutil.Process(flusher._process.pid)  # type: ignore[union-attr]
    try:
        answers = [svc.assess("declaration", [r])[0] for r in heavy_cheap("FP1", 3)]
        answers += asyncio.run(svc.assess_async("declaration", heavy_cheap("FP1", 2)))
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        ours = psutil.Process().nice()
        deadline = time.monotonic() + 30
        while child.nice() == ours and time.monotonic() < deadline:  # set as the child starts
            time.sleep(0.05)
        assert child.nice() == min(19, ours + NICENESS)  # background priority: answers come first
    finally:
        svc.stop()  # closes the child's stdin: it makes its last pass and exits
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert lake_rows(kcs) == before + len(answers) == before + 5
    # The child's counts reach this process's /metrics (they were stuck at 0 here before).
    deadline = time.monotonic() + 30
    while REGISTRY.get_sample_value("sciti_risk_buffer_flushed_total") != flushed + 5:
        assert time.monotonic() < deadline, "the flusher's count never reached the server's metrics"
        time.sleep(0.05)
    assert REGISTRY.get_sample_value("sciti_risk_buffer_pending") == 0
    assert svc.flusher.pending() == 0


def test_the_flusher_child_stops_by_itself_when_the_server_goes_away(kcs) -> None:
    flusher = FlusherProcess(kcs)
    flusher.start()
    proc = flusher._process
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the kernel does when the server process dies
    assert proc.wait(timeout=120) == 0


def test_a_flusher_child_that_died_is_started_again(kcs) -> None:
    flusher = FlusherProcess(kcs)
    flusher.start()
    try:
        assert flusher.check() is False  # alive: nothing to do
        first = flusher._process
        assert first is not None
        first.kill()
        first.wait(timeout=30)
        assert flusher.check() is True
        assert flusher._process is not None and flusher._process is not first
        assert flusher._process.poll() is None
    finally:
        flusher.stop()


# A server in miniature: the real app, one assessment (which starts the engine the way the server
# does, freezing what it loaded), then the app's shutdown and the interpreter's exit.
SERVE_ONE = """
import pickle, sys
from fastapi.testclient import TestClient
from sciti.access import create_user, issue_token
from sciti.api.app import create_app
from sciti.ops import session_scope
from tests.risk.engine.test_store import heavy_cheap
with open(sys.argv[1], "rb") as f:
    settings = pickle.load(f)
with session_scope(settings.resolved_ops_db_url) as session:
    user, _ = create_user(session, "exit-check", ["clearance_system"], service=True)
    token = issue_token(session, user, 600).token
with TestClient(create_app(settings)) as client:
    r = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": heavy_cheap("EXIT1")[0]},
                    headers={"Authorization": f"Bearer {token}"})
    print(r.status_code, flush=True)
"""


def test_a_stopped_server_exits_without_leak_reports(kcs, tmp_path) -> None:
    settings = tmp_path / "settings.pickle"
    settings.write_bytes(pickle.dumps(kcs))
    done = subprocess.run([sys.executable, "-c", SERVE_ONE, str(settings)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"
    assert "leaked" not in done.stderr, done.stderr[:2000]  # what officers saw after Ctrl+C
