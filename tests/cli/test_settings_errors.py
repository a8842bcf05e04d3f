"""A setting mistake ends any command, `sciti serve` included, with one line: which file or setting,
where, and what to write instead; never a traceback, never a password (decision 0095)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sciti.access import create_user
from sciti.cli.main import app
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings
from tests.conftest import settings_env

SECRET = "Quay-Pw-never-shown-4"
runner = CliRunner()
SERVE = ["serve", "--host", "192.0.2.1", "--port", "1"]  # TEST-NET-1: it could never listen
RETENTION_LIST = ["privacy", "retention", "list", "--user", "bob"]


@pytest.fixture
def instance(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A working directory for sciti.toml, and an instance the environment points at, with an
    administrator (so `serve` gets past its own checks) and bob, who may manage privacy."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "admin", ["administrator"], password="harbour-lantern-quietly-7")
        create_user(s, "bob", ["security_officer"], password="harbour-lantern-quietly-8")
    get_settings.cache_clear()
    open_lake.cache_clear()
    yield work
    get_settings.cache_clear()
    open_lake.cache_clear()


def _write(work: Path, text: str) -> Path:
    path = work / "sciti.toml"
    path.write_text(text, "utf-8")
    get_settings.cache_clear()
    return path


def _one_line(result, *expected: str) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # our exit, not a crash
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    line = lines[0]
    assert line.startswith("error: ") and SECRET not in line and "Traceback" not in line
    for text in expected:
        assert text in line, line
    return line


CASES = [
    pytest.param(
        f'ops_db_uri = "postgresql+psycopg://sciti:{SECRET}@db/sciti"\n',
        ["unknown setting ops_db_uri (did you mean ops_db_url?)", "sciti.toml"],
        id="misspelt key",
    ),
    pytest.param(
        '[sso]\nissuer = "https://idp.customs.example"\nclientid = "sciti"\n',
        ["unknown setting [sso] clientid (did you mean client_id?)"],
        id="misspelt key in [sso]",
    ),
    pytest.param(
        'log_level = "INFO"\nops_db_url\n',
        ["sciti.toml: line 2, column 11: not valid TOML", "`name = value`"],
        id="not TOML",
    ),
    pytest.param(
        f'ops_db_url = "postgres://sciti:{SECRET}@db.customs/sciti"\n',
        [
            "ops_db_url (SCITI_OPS_DB_URL or sciti.toml)",
            "write postgresql+psycopg://sciti:***@db.customs/sciti",
        ],
        id="postgres://",
    ),
    pytest.param(
        f'catalog_uri = "mysql://sciti:{SECRET}@db.customs/sciti"\n',
        ["catalog_uri (SCITI_CATALOG_URI or sciti.toml)", "PostgreSQL or SQLite"],
        id="mysql://",
    ),
    pytest.param(
        'log_level = "LOUD"\n',
        ["log_level (SCITI_LOG_LEVEL or sciti.toml)", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"],
        id="log level",
    ),
    pytest.param(
        'retention_file = "/nonexistent/ret.yaml"\n',
        ["retention_file (SCITI_RETENTION_FILE or sciti.toml) names /nonexistent/ret.yaml"],
        id="missing retention file",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
@pytest.mark.parametrize("command", [RETENTION_LIST, ["audit", "list"], SERVE], ids=" ".join)
def test_a_setting_mistake_in_sciti_toml_is_one_line(instance, monkeypatch, command, text, expected) -> None:
    # The instance's databases come from the environment, which wins over the file: a wrong URL
    # in the file is read only once the variable is gone.
    for name in ("ops_db_url", "catalog_uri"):
        if f"{name} =" in text:
            monkeypatch.delenv(f"SCITI_{name.upper()}", raising=False)
    _write(instance, text)
    _one_line(runner.invoke(app, command), "invalid settings", *expected)


def test_a_variable_like_a_misspelt_setting_is_one_line(instance, monkeypatch) -> None:
    monkeypatch.setenv("SCITI_OPS_DB_URI", f"postgresql+psycopg://sciti:{SECRET}@db/sciti")
    get_settings.cache_clear()
    _one_line(runner.invoke(app, ["audit", "list"]), "SCITI_OPS_DB_URI", "did you mean SCITI_OPS_DB_URL?")


def test_a_correct_file_runs_the_command(instance) -> None:
    """Control: a file of valid keys, [sso] included, and the acting account's variable."""
    rules = instance / "retention.yaml"
    rules.write_text("kinds:\n  declaration:\n    days: 3650\n    basis: customs code\n", "utf-8")
    _write(
        instance,
        f'log_level = "warning"\nretention_file = "{rules.as_posix()}"\n'
        '[sso]\nissuer = "https://idp.customs.example"\nclient_id = "sciti"\n',
    )
    result = runner.invoke(app, RETENTION_LIST)
    assert result.exit_code == 0, result.output
    assert "declaration" in result.output and "3650" in result.output


def test_a_retention_file_gone_after_start_is_one_line(instance) -> None:
    """The server's settings are read once at start; the file may go (or be broken) later."""
    rules = instance / "retention.yaml"
    rules.write_text("kinds: {}\n", "utf-8")
    _write(instance, f'retention_file = "{rules.as_posix()}"\n')
    get_settings()  # read while the file was there
    rules.unlink()
    _one_line(
        runner.invoke(app, RETENTION_LIST), "retention_file (SCITI_RETENTION_FILE or sciti.toml)", str(rules)
    )
    rules.write_text("kinds:\n  declaration: [days: 3\n", "utf-8")
    _one_line(runner.invoke(app, RETENTION_LIST), "retention_file", "not YAML text (line ")


def test_the_real_command_prints_one_line_on_stderr(tmp_path) -> None:
    """As the review ran it: a line without `=` in sciti.toml, then `sciti audit list`."""
    (tmp_path / "sciti.toml").write_text('home = "sciti-data"\nops_db_url\n', "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SCITI_")}
    done = subprocess.run(
        [sys.executable, "-m", "sciti.cli.main", "audit", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{tmp_path / 'sciti.toml'}: line 2, column 11: not valid TOML" in done.stderr
