"""`sciti sql` acts as a user: the same policy as the API, and every query or export is audited."""

from __future__ import annotations

import csv
import io

import pytest
from typer.testing import CliRunner

from sciti.access import create_user, list_entries
from sciti.cli.main import app
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings
from tests.access.test_policy import build_world

runner = CliRunner()
SQL = "SELECT record_ref, surname, document_number FROM std.passengers ORDER BY record_ref"


@pytest.fixture
def ops_url(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCITI_HOME", str(settings.home))
    monkeypatch.delenv("SCITI_USER", raising=False)
    get_settings.cache_clear()
    open_lake.cache_clear()
    s = get_settings()
    migrate(s.resolved_ops_db_url)
    build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
    with session_scope(s.resolved_ops_db_url) as session:
        for name, role, office in [
            ("ann", "analyst", None),
            ("sec", "security_officer", None),
            ("kr2", "targeting_officer", "KR02"),
        ]:
            create_user(session, name, [role], office_code=office, service=True)
    yield s.resolved_ops_db_url
    get_settings.cache_clear()
    open_lake.cache_clear()


def _audit(url: str, **kw):
    with session_scope(url) as s:
        return list_entries(s, **kw)


def test_a_user_is_required(ops_url: str) -> None:
    result = runner.invoke(app, ["sql", SQL])
    assert result.exit_code == 1 and "--user" in result.output
    result = runner.invoke(app, ["sql", SQL, "--user", "nobody"])
    assert result.exit_code == 1 and "account 'nobody' does not exist" in result.output


def test_query_as_a_user_is_masked_and_audited(ops_url: str) -> None:
    result = runner.invoke(app, ["sql", SQL, "--user", "ann", "-f", "csv", "--purpose", "monthly stats"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["surname"] for r in rows] == ["C***", "W***", "K**"]
    assert "M1234567" not in result.output
    (entry,) = _audit(ops_url, action="export")
    assert (entry.actor, entry.source, entry.purpose, entry.details["rows"]) == (
        "ann",
        "cli",
        "monthly stats",
        3,
    )


def test_unmask_from_the_cli(ops_url: str) -> None:
    args = ["sql", SQL, "--user", "ann", "--unmask"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "purpose" in result.output
    result = runner.invoke(app, [*args, "--purpose", "case 3"], terminal_width=200)
    assert result.exit_code == 0 and "Chen" in result.output
    assert [e.outcome for e in _audit(ops_url, action="unmask")] == ["ok", "failed"]


def test_need_to_know_and_office_rows(ops_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCITI_USER", "kr2")
    result = runner.invoke(app, ["sql", "SELECT record_id FROM std.declarations", "-f", "json"])
    assert result.exit_code == 0 and result.output.count("record_id") == 1 and "d2" in result.output
    result = runner.invoke(app, ["sql", "SELECT * FROM std.cases"])
    assert result.exit_code == 1 and "does not exist or your roles" in result.output
    tables = runner.invoke(app, ["tables"], terminal_width=200)
    assert "std.declarations" in tables.output and "std.cases" not in tables.output
    assert "raw.api_feed" not in tables.output


def test_export_needs_sql_export(ops_url: str) -> None:
    result = runner.invoke(app, ["sql", "SELECT 1 AS one", "--user", "sec", "-f", "csv"])
    assert result.exit_code == 1 and "may not export" in result.output
    shown = runner.invoke(app, ["sql", "SELECT 1 AS one", "--user", "sec"])
    assert shown.exit_code == 0, shown.output
    assert [e.action for e in _audit(ops_url, actor="sec")] == ["query"]
