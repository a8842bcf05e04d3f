"""`sciti init` and `sciti serve`: in process, and the real server in a subprocess over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx2
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sciti.access import list_entries
from sciti.cli.main import app
from sciti.ops import User, session_scope
from sciti.settings import Settings, get_settings
from tests.conftest import settings_env

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_PASSWORD = re.compile(r"password: ([a-z0-9]{5}(?:-[a-z0-9]{5}){3})")


@pytest.fixture
def use_instance(monkeypatch):
    def apply(settings: Settings) -> Settings:
        for key, value in settings_env(settings).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        return settings

    yield apply
    get_settings.cache_clear()


@pytest.fixture(params=BACKENDS)
def instance(request, use_instance) -> Settings:
    return use_instance(request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings"))


def test_init_creates_the_instance_and_the_first_administrator(instance):
    runner = CliRunner()
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    password = _PASSWORD.search(first.output).group(1)
    assert "ref.hs" in first.output  # code lists published to the ref zone
    with session_scope(instance.resolved_ops_db_url) as s:
        admin = s.scalars(select(User).where(User.username == "admin")).one()
        assert admin.roles == ["administrator"] and admin.must_change_password
        assert password not in admin.password_hash
        (made,) = list_entries(s, action="user.create")  # the trail starts with the first account
        assert made.target == "user:admin" and made.source == "cli" and password not in repr(made.details)
    checked = runner.invoke(app, ["audit", "verify"])
    assert "audit trail intact: 1 entries" in checked.output and "--anchor" in checked.output
    from sciti.lake import open_lake

    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    assert lake.exists("ref.hs") and lake.exists("ref.countries")
    assert {ns[0] for ns in lake.catalog.list_namespaces()} >= {"raw", "std", "ref"}

    again = runner.invoke(app, ["init"])
    assert again.exit_code == 1 and "already initialised" in again.output
    quiet = runner.invoke(app, ["init", "--if-missing"])
    assert quiet.exit_code == 0 and "instance already initialised at" in quiet.output
    assert password not in again.output + quiet.output  # shown once


def test_serve_refuses_a_missing_instance(use_instance, settings):
    use_instance(settings)
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1 and "sciti init" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(base: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_real_server_in_a_subprocess(settings, tmp_path):
    env = {**os.environ, **settings_env(settings), "SCITI_CONNECTORS_DIR": str(tmp_path / "none")}
    cmd = [sys.executable, "-m", "sciti.cli.main"]
    init = subprocess.run([*cmd, "init"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    one_time = _PASSWORD.search(init.stdout).group(1)
    # Personal data and secrets: nothing the instance holds is readable by other local accounts.
    made = [p for p in settings.home.rglob("*")]
    assert any(p.name == "ops.db" for p in made) and any(p.is_dir() for p in made)
    open_to_others = [str(p) for p in made if p.stat().st_mode & 0o077]
    assert open_to_others == [], open_to_others

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(base, proc)
        with httpx2.Client(base_url=base, timeout=30) as http:
            assert http.get("/api/v1/me").status_code == 401
            first = http.post("/api/v1/auth/token", data={"username": "admin", "password": one_time})
            assert first.json()["error"]["code"] == "password_change_required"
            new = "violet-ferry-morning-42"
            changed = http.post(
                "/api/v1/auth/password",
                json={"username": "admin", "current_password": one_time, "new_password": new},
            )
            assert changed.status_code == 200, changed.text
            login = http.post("/api/v1/auth/token", data={"username": "admin", "password": new})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert http.get("/api/v1/me", headers=auth).json()["roles"] == ["administrator"]
            assert "sciti_http_requests_total" in http.get("/metrics", headers=auth).text
            assert http.get("/api/v1/openapi.json").json()["info"]["title"] == "SCITI API"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it ended
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert f"http://127.0.0.1:{port}" in out and "/api/v1/docs" in out
    lines = [line for line in err.splitlines() if line.strip()]
    entries = [__import__("json").loads(line) for line in lines]  # every line is one JSON object
    assert any(e["message"] == "api stopped" for e in entries)
    assert one_time not in err and new not in err and token not in err
