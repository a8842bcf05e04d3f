"""A real `sciti serve` over HTTP: it believes a forwarded client address only from the proxies
listed in ``trusted_proxies`` (none by default), and throttles every password check the way the
review tried it, with the real limit of 50 failures (decision 0082)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from sciti.access import create_user, list_entries
from sciti.access.throttle import CLIENT_MAX_FAILURES
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.cli.test_server import _free_port, _wait_until_up
from tests.conftest import settings_env

PASSWORD = "harbour-lantern-quietly-7"
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
pytestmark = pytest.mark.slow


@pytest.fixture
def instance(settings: Settings) -> Settings:
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "admin", ["administrator"], password=PASSWORD)
        create_user(s, "viewer", ["viewer"], password=PASSWORD)
    return settings


@contextmanager
def serving(settings: Settings, cwd: Path, **env: str) -> Iterator[httpx2.Client]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    variables = {
        **os.environ,
        **settings_env(settings),
        "SCITI_CONNECTORS_DIR": str(cwd / "none"),
        "SCITI_LAKE_UPKEEP_EVERY_HOURS": "0",
        "SCITI_RETENTION_EVERY_HOURS": "0",
        **env,
    }
    variables.pop("FORWARDED_ALLOW_IPS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciti.cli.main", "serve", "--port", str(port)],
        env=variables,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(base, proc)
        with httpx2.Client(base_url=base, timeout=60) as http:
            yield http
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _sources(settings: Settings, action: str) -> list[str | None]:
    with session_scope(settings.resolved_ops_db_url) as s:
        return [e.source for e in list_entries(s, action=action)]


@pytest.mark.parametrize(
    ("trusted", "env", "source", "secure"),
    [
        # uvicorn alone believes 127.0.0.1; SCITI's default believes no one, and so does an
        # operator's FORWARDED_ALLOW_IPS left in the environment
        ("none", {"FORWARDED_ALLOW_IPS": "*"}, "127.0.0.1", False),
        ("the proxy", {"SCITI_TRUSTED_PROXIES": "127.0.0.1"}, "203.0.113.9", True),
        ("another proxy", {"SCITI_TRUSTED_PROXIES": "10.0.0.5, 192.0.2.0/24"}, "127.0.0.1", False),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_forwarded_address_is_believed_only_from_a_listed_proxy(
    instance, tmp_path, trusted, env, source, secure
):
    with serving(instance, tmp_path, **env) as http:
        wrong = http.post(
            "/api/v1/auth/token", data={"username": "viewer", "password": "x"}, headers=FORWARDED
        )
        assert wrong.status_code == 401
        ok = http.post(
            "/api/v1/auth/session", json={"username": "viewer", "password": PASSWORD}, headers=FORWARDED
        )
        assert ok.status_code == 200, ok.text
    assert _sources(instance, "login.failed") == [source]
    assert _sources(instance, "login") == [source]
    # X-Forwarded-Proto from the proxy that ends TLS is what makes the session cookie Secure
    assert ("secure" in ok.headers["set-cookie"].lower()) is secure


def test_a_real_server_refuses_every_password_check_from_a_blocked_address(instance, tmp_path):
    """The review's steps: 50 failed logins from 127.0.0.1, then the password change (API and web
    page) with the right and a wrong current password. Both were answered: now both are 429."""
    with serving(instance, tmp_path) as http:
        for _ in range(CLIENT_MAX_FAILURES):
            wrong = http.post("/api/v1/auth/token", data={"username": "viewer", "password": "wrong-guess"})
            assert wrong.status_code == 401
        assert (
            http.post("/api/v1/auth/token", data={"username": "viewer", "password": PASSWORD}).status_code
            == 429
        )
        for current in (PASSWORD, "wrong-guess"):
            body = {"username": "viewer", "current_password": current, "new_password": "weak"}
            changed = http.post("/api/v1/auth/password", json=body)
            assert changed.status_code == 429 and changed.json()["error"]["code"] == "login_throttled"
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/ui/login").text).group(1)
        form = {"username": "viewer", "password": PASSWORD, "new_password": "weak", "csrf_token": token}
        web = http.post("/ui/password", data=form)
        assert web.status_code == 429 and "Too many failed logins" in web.text
    assert not _sources(instance, "password.change")
