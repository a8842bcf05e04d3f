"""`sciti privacy ...` as a named account holding privacy.manage."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from sciti.access import create_user, list_entries
from sciti.cli.main import app
from sciti.lake import open_lake
from sciti.model import get_kind
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings
from tests.access.test_privacy_retention import TABLE, _rows

runner = CliRunner()


@pytest.fixture
def instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SCITI_HOME", str(settings.home))
    get_settings.cache_clear()
    s = get_settings()
    migrate(s.resolved_ops_db_url)
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "dpo", ["security_officer"], service=True)
        create_user(session, "ann", ["analyst"], service=True)
    yield s
    get_settings.cache_clear()


def test_retention_run_deletes_and_proves(instance: Settings) -> None:
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    lake.ensure_table(TABLE, get_kind("passenger").arrow_schema())
    lake.append(TABLE, _rows("old", date(2001, 1, 1), 5))
    lake.append(TABLE, _rows("new", date.today(), 3))
    out = runner.invoke(app, ["privacy", "retention", "run", "-u", "dpo", "--kind", "passenger", "--json"])
    assert out.exit_code == 0, out.output
    assert '"rows_deleted": 5' in out.output
    assert lake.table(TABLE).scan().to_arrow().num_rows == 3
    with session_scope(instance.resolved_ops_db_url) as s:
        assert list_entries(s, action="retention.run")[0].actor == "dpo"
    out = runner.invoke(app, ["privacy", "retention", "run", "-u", "ann"])
    assert out.exit_code == 1 and "privacy.manage" in out.output


def test_consent_and_transfer_commands(instance: Settings) -> None:
    base = ["--subject", "P:1", "--holder", "imm", "--recipient", "cus", "--purpose", "case", "-u", "dpo"]
    assert runner.invoke(app, ["privacy", "consent", "check", *base]).exit_code == 1
    out = runner.invoke(app, ["privacy", "consent", "record", *base, "--until", "2099-01-01"])
    assert out.exit_code == 0 and "consent 1 recorded" in out.output, out.output
    assert runner.invoke(app, ["privacy", "consent", "check", *base]).exit_code == 0
    assert runner.invoke(app, ["privacy", "consent", "withdraw", "1", "-u", "dpo"]).exit_code == 0
    assert runner.invoke(app, ["privacy", "consent", "check", *base]).exit_code == 1
    rule = ["privacy", "transfer", "set", "JP", "declaration", "declaration_id", "-u", "dpo"]
    out = runner.invoke(app, rule)
    assert out.exit_code == 0, out.output
    check = ["privacy", "transfer", "check", "JP", "declaration"]
    assert runner.invoke(app, [*check, "declaration_id", "-u", "dpo"]).exit_code == 0
    out = runner.invoke(app, [*check, "declaration_id", "invoice_amount", "-u", "dpo"])
    assert out.exit_code == 1 and "invoice_amount" in out.output
    assert "declaration" in runner.invoke(app, ["privacy", "transfer", "list", "-u", "dpo"]).output
