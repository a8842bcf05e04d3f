"""A database the CLI cannot reach ends every command with one line: which database, its URL
without the password, the driver's reason and what to check; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from sciti.access import create_user
from sciti.cli.main import app
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings
from tests.conftest import settings_env

SECRET = "Pw-never-shown-7"
# Nothing listens on port 1 of the loopback: the connection is refused at once.
# `serve` is given an address no machine here has (TEST-NET-1), so it could never listen.
UNREACHABLE = f"postgresql+psycopg://sciti:{SECRET}@127.0.0.1:1/sciti"
runner = CliRunner()

COMMANDS = [
    ["batches"],
    ["init"],
    ["serve", "--host", "192.0.2.1", "--port", "1"],
    ["audit", "list"],
    ["audit", "verify"],
    ["quarantine", "list"],
    ["sql", "--user", "bob", "SELECT 1"],
    ["tables", "--user", "bob"],
    ["secrets", "list", "--user", "bob"],
    ["privacy", "retention", "list", "--user", "bob"],
    ["risk", "model", "list"],
    ["lake", "maintain"],
]
# Commands that catch the error themselves, with their own line (no URL in it).
OWN_LINE = [["user", "list"], ["user", "add", "bob", "--role", "viewer"], ["risk", "rule", "list"]]


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    def apply(**overrides: str) -> Settings:
        for key, value in {**settings_env(settings), **overrides}.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        open_lake.cache_clear()
        return get_settings()

    yield apply
    get_settings.cache_clear()
    open_lake.cache_clear()


def _one_clear_line(result, *names: str) -> str:
    assert result.exit_code == 1, result.output
    # The command ended through its own exit, not an exception the runner caught.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    assert line.startswith("error: ") and SECRET not in line
    for name in names:
        assert name in line, line
    return line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_operational_database_is_one_line(env, command):
    env(SCITI_OPS_DB_URL=UNREACHABLE)
    line = _one_clear_line(runner.invoke(app, command), "SCITI_OPS_DB_URL", "127.0.0.1:1")
    assert "postgresql+psycopg://sciti:***@127.0.0.1:1/sciti" in line
    assert "Connection refused" in line or "connection" in line.lower()


@pytest.mark.parametrize("command", OWN_LINE, ids=" ".join)
def test_commands_with_their_own_line_keep_it_to_one(env, command):
    env(SCITI_OPS_DB_URL=UNREACHABLE)
    _one_clear_line(runner.invoke(app, command), "not reachable", "ops_db_url")


@pytest.mark.parametrize(
    "command",
    [["tables"], ["lake", "maintain"], ["init"], ["serve", "--host", "192.0.2.1", "--port", "1"]],
    ids=" ".join,
)
def test_an_unreachable_catalogue_is_one_line(env, settings, command):
    if command[0] == "serve":  # an instance whose catalogue has gone away since `sciti init`
        migrate(settings.resolved_ops_db_url)
        with session_scope(settings.resolved_ops_db_url) as s:
            create_user(s, "admin", ["administrator"], password="harbour-lantern-quietly-7")
    env(SCITI_CATALOG_URI=UNREACHABLE)
    line = _one_clear_line(runner.invoke(app, command), "catalogue", "SCITI_CATALOG_URI")
    assert "***@127.0.0.1:1" in line


def test_an_embedded_database_in_a_missing_folder_says_so(env, tmp_path):
    env(SCITI_OPS_DB_URL=f"sqlite:///{tmp_path / 'no such folder' / 'ops.db'}")
    line = _one_clear_line(runner.invoke(app, ["audit", "list"]), "unable to open database file")
    assert "folder exists" in line


@pytest.mark.postgres
def test_an_uninitialised_database_says_run_init(env, pg_database):
    env(SCITI_OPS_DB_URL=pg_database)  # a database on the real server, with no tables in it
    _one_clear_line(runner.invoke(app, ["audit", "list"]), "is not initialised", "sciti init")


def test_other_database_errors_are_not_disguised(env):
    """A failed statement on a reachable database is a bug: its traceback is kept."""
    from sciti.cli.common import database_problem

    env()
    error = IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: users.username"))
    assert database_problem(error) is None


def test_the_real_command_prints_one_line_on_stderr(settings, tmp_path):
    """As the review ran it: `sciti batches` against an unreachable SCITI_OPS_DB_URL."""
    env = {**os.environ, **settings_env(settings), "SCITI_OPS_DB_URL": UNREACHABLE}
    done = subprocess.run(
        [sys.executable, "-m", "sciti.cli.main", "batches"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot reach the operational database" in done.stderr and SECRET not in done.stderr
