"""The server's flusher runs in its own process: assessments reach the lake, and stopping the
server (or the server dying) ends the child after a last pass, losing nothing."""

from __future__ import annotations

import asyncio
import time

import psutil

from sciti.risk.engine import FlusherProcess, RiskService
from sciti.risk.engine.flush_worker import NICENESS
from tests.risk.engine.test_store import heavy_cheap, lake_rows


def test_the_server_flusher_process_moves_every_answer_to_the_lake_and_stops(kcs, assessor) -> None:
    before = lake_rows(kcs)
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
