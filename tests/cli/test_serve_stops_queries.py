"""Ctrl+C on `sciti serve` stops the SQL queries still running (decision 0098).

uvicorn waits for open requests before it shuts down: without this, one long query held the
server for minutes after Ctrl+C, and only SIGTERM or a kill ended it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx2
import pytest

from sciti.access import create_user, list_entries
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.cli.test_server import _free_port, _wait_until_up
from tests.conftest import settings_env

PASSWORD = "harbour-lantern-quietly-7"
# Minutes of work for DuckDB, reading no table: only an interrupt ends it early.
LONG = "SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b"
pytestmark = pytest.mark.slow


def test_ctrl_c_stops_a_running_query_and_the_server_ends(settings: Settings, tmp_path) -> None:
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "admin", ["administrator"], password=PASSWORD)  # an initialised instance
        create_user(s, "ana", ["analyst"], password=PASSWORD)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **settings_env(settings),
        "SCITI_CONNECTORS_DIR": str(tmp_path / "none"),
        "SCITI_LAKE_UPKEEP_EVERY_HOURS": "0",
        "SCITI_RETENTION_EVERY_HOURS": "0",
        "SCITI_SQL_TIMEOUT_SECONDS": "900",  # the time limit must not be what ends it
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciti.cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[httpx2.Response] = []
    try:
        _wait_until_up(base, proc)
        with httpx2.Client(base_url=base, timeout=300) as http:
            token = http.post("/api/v1/auth/token", data={"username": "ana", "password": PASSWORD})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            asking = threading.Thread(
                target=lambda: answers.append(http.post("/api/v1/sql", json={"sql": LONG}, headers=auth))
            )
            asking.start()
            time.sleep(3)  # the query is running
            assert not answers, answers
            proc.send_signal(signal.SIGINT)  # Ctrl+C
            asking.join(timeout=120)
        proc.communicate(timeout=120)  # the server ends: it does not wait minutes for the query
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, -signal.SIGINT)
    (answer,) = answers
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "query_stopped", answer.text
    with session_scope(settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, actor="ana", action="query", limit=1)
    assert entry.outcome == "stopped"
