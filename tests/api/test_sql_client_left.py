"""A SQL query whose client disconnects is stopped soon after, not at its time limit, and audited as
stopped because the client left (decision 0109): the API's query and export, and the web page's.

Before, DuckDB worked on for nobody until the query's time limit (60 s; 600 s for an export) and
the audit said nothing of why. A real server (uvicorn on loopback) and a real socket that closes,
as a browser tab or a script with its own timeout does.
"""

from __future__ import annotations

import importlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import uvicorn

from sciti.access import create_user, list_entries
from sciti.access.sessions import login_session
from sciti.api.app import create_app
from sciti.lake.running import stop_running_queries
from sciti.ops import session_scope
from sciti.settings import Settings

running = importlib.import_module("sciti.lake.running")
# Minutes of work for DuckDB, reading no table: only an interrupt ends it early.
SLOW_SQL = "SELECT sum(hash(a.range * b.range)) AS s FROM range(200000) a, range(200000) b"
LIMIT_SECONDS = 900.0  # the time limit must not be what ends it
STOPPED_WITHIN = 60.0  # far below the limit, far above the poll (a quarter of a second) on a busy machine
PASSWORD = "harbour-lantern-quietly-7"
pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(api_settings: Settings) -> Iterator[tuple[Settings, int]]:
    settings = api_settings.model_copy(
        update={"sql_timeout_seconds": LIMIT_SECONDS, "sql_export_timeout_seconds": LIMIT_SECONDS}
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield settings, port
    finally:
        stop_running_queries()  # a failing run must not leave DuckDB working for minutes
        server.should_exit = True
        thread.join(30)


def _api(settings: Settings, path: str) -> tuple[dict[str, str], bytes]:
    from tests.api.conftest import token_factory

    token = token_factory(settings)("analyst")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return headers, json.dumps({"sql": SLOW_SQL}).encode()


def _web(settings: Settings, path: str) -> tuple[dict[str, str], bytes]:
    """A browser's logged-in session (cookie and anti-CSRF token), as the login page makes it."""
    with session_scope(settings.resolved_ops_db_url) as s:
        user, _ = create_user(s, "u-analyst", ["analyst"], password=PASSWORD)
        made = login_session(s, user, 60)
    headers = {
        "Cookie": f"sciti_session={made.session_id}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = {"sql": SLOW_SQL, "csrf_token": made.csrf_token}
    if path.endswith("export"):
        form["format"] = "csv"
    return headers, urlencode(form).encode()


def _post_and_leave_open(port: int, path: str, headers: dict[str, str], body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(head.encode("latin-1") + b"\r\n" + body)
    return sock


def _until(what: str, check, seconds: float):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


@pytest.mark.parametrize(
    ("path", "action", "client"),
    [
        ("/api/v1/sql", "query", _api),
        ("/api/v1/sql/export", "export", _api),
        ("/ui/sql/run", "query", _web),
        ("/ui/sql/export", "export", _web),
    ],
    ids=["api-query", "api-export", "web-run", "web-export"],
)
def test_a_query_whose_client_left_is_stopped_and_audited_why(served, path, action, client) -> None:
    settings, port = served
    headers, body = client(settings, path)
    sock = _post_and_leave_open(port, path, headers, body)
    try:
        _until("the query never started", lambda: running._RUNNING, 60)
        time.sleep(0.5)  # it is running, not just starting
        assert running._RUNNING, "the query ended by itself"
    finally:
        sock.close()  # the client leaves: a closed tab, a script's own timeout
    left = time.monotonic()
    _until(
        f"the query ran on for more than {STOPPED_WITHIN:g} s after its client left",
        lambda: not running._RUNNING,
        STOPPED_WITHIN,
    )
    stopped_after = time.monotonic() - left
    assert stopped_after < LIMIT_SECONDS / 10

    def entry():
        with session_scope(settings.resolved_ops_db_url) as s:
            return list_entries(s, action=action, limit=1)

    (audited,) = _until("the stopped query was not audited", entry, 30)
    assert (audited.actor, audited.outcome) == ("u-analyst", "stopped")
    assert audited.details["stopped_by"] == "client_disconnected"
    assert "its client disconnected" in audited.details["error"]
    assert audited.details["sql"] == SLOW_SQL


def test_a_client_that_waits_gets_its_answer(served) -> None:
    """The watch on the connection does not stop a query whose client is still there."""
    import httpx2

    settings, port = served
    headers, _ = _api(settings, "/api/v1/sql")
    # A second or so of work: the connection is looked at several times while it runs.
    sql = "SELECT count(*) AS n FROM range(10000) a, range(10000) b WHERE (a.range * b.range) % 7 = 1"
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        answer = http.post("/api/v1/sql", json={"sql": sql}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"][0]["n"] > 0
    with session_scope(settings.resolved_ops_db_url) as s:
        (audited,) = list_entries(s, action="query", limit=1)
    assert audited.outcome == "ok" and "stopped_by" not in audited.details
