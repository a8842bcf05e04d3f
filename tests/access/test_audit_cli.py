"""`sciti audit list|verify|anchor` on a real instance, including a tampered one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sciti.access import audit
from sciti.cli.main import app
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def ops_url(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCITI_HOME", str(settings.home))
    get_settings.cache_clear()
    url = get_settings().resolved_ops_db_url
    migrate(url)
    with session_scope(url) as s:
        for i, (actor, action) in enumerate([("ann", "query"), ("bob", "unmask"), ("ann", "export")]):
            audit(s, actor=actor, action=action, target=f"table:std.t{i}", purpose="p" if i == 1 else None)
    yield url
    get_settings.cache_clear()


def test_verify_says_intact_then_names_the_tampered_entry(ops_url: str) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 3 entries" in result.output
    with session_scope(ops_url) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "broken at entry 2" in result.output and "missing" in result.output


@pytest.mark.parametrize(
    ("args", "seqs"),
    [
        ([], [3, 2, 1]),
        (["--actor", "ann"], [3, 1]),
        (["--action", "unmask"], [2]),
        (["--since", "2000-01-01"], [3, 2, 1]),
        (["--since", "2999-01-01"], []),
        (["--limit", "1"], [3]),
    ],
)
def test_list_filters(ops_url: str, args: list[str], seqs: list[int]) -> None:
    result = runner.invoke(app, ["audit", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in result.output.splitlines()] == seqs


def test_list_table_and_bad_time(ops_url: str) -> None:
    result = runner.invoke(app, ["audit", "list"], terminal_width=200)
    assert result.exit_code == 0 and "unmask" in result.output and "3 entries" in result.output
    bad = runner.invoke(app, ["audit", "list", "--since", "yesterday"])
    assert bad.exit_code == 1 and "ISO" in bad.output


def test_anchor_then_verify_against_it(ops_url: str, tmp_path: Path) -> None:
    anchors = tmp_path / "heads.jsonl"
    result = runner.invoke(app, ["audit", "anchor", str(anchors)])
    assert result.exit_code == 0 and "anchored entry 3" in result.output
    assert runner.invoke(app, ["audit", "verify", "--anchor", str(anchors)]).exit_code == 0
    with session_scope(ops_url) as s:  # truncate the log and its head together: only the anchor knows
        s.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        s.execute(text("UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)"))
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify", "--anchor", str(anchors)])
    assert result.exit_code == 1 and "entry 3" in result.output


def test_there_is_no_command_that_edits_entries() -> None:
    result = runner.invoke(app, ["audit", "--help"])
    commands = {
        line.split()[1]
        for line in result.output.splitlines()
        if line.startswith("│ ") and len(line.split()) > 1
    }
    assert {"list", "verify", "anchor"} <= commands
    assert not commands & {"delete", "edit", "update", "remove", "purge"}
