"""`sciti risk rule ...`: the CLI acts as a named account; four eyes holds there too."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sciti.cli.main import app
from sciti.ops import migrate
from sciti.settings import get_settings
from tests.cli.test_server import settings_env
from tests.risk.rules.conftest import UNDERVALUE, add_people


@pytest.fixture
def cli(settings, monkeypatch):
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCITI_USER", raising=False)
    get_settings.cache_clear()
    migrate(settings.resolved_ops_db_url)
    add_people(settings)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    yield run
    get_settings.cache_clear()


def test_write_submit_approve_diff_and_dry_run(cli, tmp_path) -> None:
    path = tmp_path / "under.yaml"
    path.write_text(UNDERVALUE, encoding="utf-8")
    assert "ok" in cli("risk", "rule", "check", str(path))
    assert "T-UNDER-01 version 1: submitted" in cli(
        "risk", "rule", "add", str(path), "--user", "alice", "--submit"
    )
    refused = cli("risk", "rule", "approve", "T-UNDER-01", "1", "--user", "alice", code=1)
    assert "may not rules.approve" in refused
    assert "version 1: approved" in cli(
        "risk", "rule", "approve", "T-UNDER-01", "1", "--user", "bob", "-m", "ok"
    )

    path.write_text(UNDERVALUE.replace("30%", "25%"), encoding="utf-8")
    assert "T-UNDER-01 version 2: draft" in cli("risk", "rule", "add", str(path), "--user", "carol")
    assert "+when: unit_value_ratio < 25%" in cli("risk", "rule", "diff", "T-UNDER-01")
    cli("risk", "rule", "submit", "T-UNDER-01", "2", "--user", "carol")
    assert "cannot approve" in cli("risk", "rule", "approve", "T-UNDER-01", "2", "--user", "carol", code=1)
    listed = cli("risk", "rule", "list")
    assert "T-UNDER-01" in listed and "v1" in listed
    assert "approve" in cli("risk", "rule", "history", "T-UNDER-01")
    assert "COALESCE(" in cli("risk", "rule", "show", "T-UNDER-01", "--version", "2")

    out = json.loads(cli("risk", "rule", "dry-run", "T-UNDER-01", "--days", "5", "--user", "alice", "--json"))
    assert (out["rule_id"], out["version"], out["days"], out["hits"]) == ("T-UNDER-01", 2, 5, 0)
    assert "--user" in cli("risk", "rule", "dry-run", "T-UNDER-01", code=1)


def test_bad_files_fail_with_the_position(cli, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(UNDERVALUE.replace("< 30%", "<< 30%"), encoding="utf-8")
    out = cli("risk", "rule", "check", str(path), code=1)
    assert "line 1 column" in out and "bad.yaml" in out
    assert "no enabled account" in cli("risk", "rule", "starter", "--user", "nobody", code=1)
    assert "version 1: draft" in cli("risk", "rule", "starter", "--user", "alice")
