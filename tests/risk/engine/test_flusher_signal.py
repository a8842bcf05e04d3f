"""Ctrl+C on the server does not interrupt the flusher child: it stops when the server closes its
stdin, after a last pass, and also when the server is killed outright (stdin reaches EOF)."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import psutil
import pytest

from sciti.ops import session_scope
from sciti.risk.engine import Assessor, Flusher
from sciti.risk.engine.flusher import pending
from sciti.risk.engine.store import write
from tests.risk.engine.test_store import heavy_cheap, lake_rows

# A stand-in for `sciti serve`: starts the flusher process, and on Ctrl+C stops it as the server's
# shutdown does, then prints the child's exit code.
SERVER = """
import pickle, signal, sys, time
# Ctrl+C reaches a terminal's foreground job with its default action. A test run started in the
# background of a non-interactive shell (a CI script's `&`) inherits SIGINT ignored: restore it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from sciti.risk.engine import FlusherProcess
with open(sys.argv[1], "rb") as f:
    settings = pickle.load(f)
flusher = FlusherProcess(settings)
flusher.start()
child = flusher._process
print(child.pid, flush=True)
try:
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    flusher.stop()
    print(child.returncode, flush=True)
"""


@pytest.fixture
def slow_settings(kcs, tmp_path):
    """The test instance, with a flush interval so long that only the last pass moves rows."""
    path = tmp_path / "settings.pickle"
    path.write_bytes(pickle.dumps(kcs.model_copy(update={"buffer_max_seconds": 3600.0})))
    return path


def buffered(kcs, n: int) -> int:
    """Put ``n`` assessments in the outbox (none flushed yet); returns the lake's row count now."""
    Flusher(kcs).flush()  # start from an empty outbox
    before = lake_rows(kcs)
    assessor = Assessor.load(kcs, kinds=("declaration",))
    with session_scope(kcs.resolved_ops_db_url) as session:
        write(session, assessor.policy, assessor.assess("declaration", heavy_cheap("SIG1", n)))
    assert pending(kcs.resolved_ops_db_url) == n
    return before


def start_server(settings_path) -> tuple[subprocess.Popen[str], psutil.Process]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(settings_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, like a job in a terminal
    )
    assert server.stdout is not None
    child = psutil.Process(int(server.stdout.readline()))
    settle(child)
    return server, child


def settle(proc: psutil.Process, timeout: float = 60.0) -> None:
    """Wait until the child has started up (imports done: its CPU time stops growing)."""
    end, last = time.monotonic() + timeout, -1.0
    while time.monotonic() < end:
        t = sum(proc.cpu_times()[:2])
        if t == last:
            return
        last = t
        time.sleep(0.5)


def test_ctrl_c_lets_the_flusher_make_its_last_pass(kcs, slow_settings) -> None:
    before = buffered(kcs, 3)
    server, child = start_server(slow_settings)
    os.killpg(server.pid, signal.SIGINT)  # Ctrl+C: the terminal signals the foreground group
    child.send_signal(signal.SIGINT)  # and a SIGINT that reaches the child anyway is ignored
    out, err = server.communicate(timeout=180)
    assert server.returncode == 0, err
    assert out.strip() == "0"  # the child's exit code
    assert "Fatal Python error" not in err and "KeyboardInterrupt" not in err, err
    assert lake_rows(kcs) == before + 3
    assert pending(kcs.resolved_ops_db_url) == 0


def test_the_flusher_stops_after_a_last_pass_when_the_server_is_killed(kcs, slow_settings) -> None:
    before = buffered(kcs, 2)
    server, child = start_server(slow_settings)
    os.killpg(server.pid, signal.SIGKILL)  # the server's group only: the child is not in it
    server.communicate(timeout=30)
    child.wait(timeout=180)  # its stdin reached EOF
    assert lake_rows(kcs) == before + 2
    assert pending(kcs.resolved_ops_db_url) == 0
