"""The account a command acts as (``--user`` / ``SCITI_USER``) must be usable now: a disabled,
expired or locked account acts through no command, as none of its tokens or sessions works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import typer.main
from typer.testing import CliRunner

from sciti.access import LOCK_AFTER_FAILURES, InvalidCredentials, create_user, list_entries, login
from sciti.access.lifecycle import set_expiry
from sciti.cli.main import app
from sciti.lake import open_lake
from sciti.ops import User, migrate, session_scope
from sciti.ops.rules_tables import Rule
from sciti.settings import Settings, get_settings
from tests.conftest import settings_env

PASSWORD = "harbour-lantern-quietly-7"
# One account that holds every permission these commands check, so a refusal can only be its state.
ROLES = ["supervisor", "analyst", "administrator", "security_officer"]
runner = CliRunner()


@pytest.fixture
def instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCITI_USER", raising=False)
    get_settings.cache_clear()
    open_lake.cache_clear()
    migrate(settings.resolved_ops_db_url)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_table("std.decl", pa.schema([pa.field("record_id", pa.string(), nullable=False)]))
    lake.append("std.decl", pa.table({"record_id": ["a", "b"]}))
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "supervisor", ROLES, password=PASSWORD)
    yield settings
    get_settings.cache_clear()
    open_lake.cache_clear()


def _make(state: str, url: str) -> str:
    """Put the supervisor account in ``state``; returns the word the refusal must use."""
    if state == "expired":  # `sciti user expire supervisor --on 2026-01-01`, as the finding did
        with session_scope(url) as s:
            set_expiry(
                s, "supervisor", datetime(2026, 1, 1, tzinfo=UTC), now=datetime(2026, 2, 1, tzinfo=UTC)
            )
        return "expired on 2026-01-01"
    if state == "disabled":
        assert runner.invoke(app, ["user", "disable", "supervisor"]).exit_code == 0
        return "is disabled"
    if state == "locked":
        for _ in range(LOCK_AFTER_FAILURES):
            with session_scope(url) as s, pytest.raises(InvalidCredentials):
                login(s, "supervisor", "wrong-wrong-wrong", 30)
        return "is locked after failed logins until"
    assert state == "active"
    return ""


COMMANDS = [
    pytest.param(["sql", "SELECT count(*) AS n FROM std.decl"], "2", id="sql"),
    pytest.param(["tables"], "std.decl", id="tables"),
    pytest.param(["secrets", "list"], "", id="secrets-list"),
    pytest.param(["privacy", "retention", "list"], "", id="privacy-retention-list"),
    pytest.param(["risk", "rule", "starter"], "draft", id="risk-rule-starter"),  # acts inside risk.rules
]


@pytest.mark.parametrize("how", ["option", "env"])
@pytest.mark.parametrize("state", ["active", "expired", "disabled", "locked"])
@pytest.mark.parametrize(("command", "shows"), COMMANDS)
def test_only_a_usable_account_acts_through_the_cli(instance, monkeypatch, command, shows, state, how):
    url = instance.resolved_ops_db_url
    word = _make(state, url)
    args = [*command, "--user", "supervisor"] if how == "option" else command
    if how == "env":
        monkeypatch.setenv("SCITI_USER", "supervisor")
    result = runner.invoke(app, args)
    if state == "active":
        assert result.exit_code == 0, result.output
        assert shows in result.output
        return
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: account 'supervisor' ") and word in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    with session_scope(url) as s:
        [refusal] = list_entries(s, action="cli.refused")
        assert s.query(Rule).count() == 0  # the starter rules were not drafted either
        assert not list_entries(s, action="query")  # nor a query run
    assert (refusal.actor, refusal.source, refusal.outcome) == ("supervisor", "cli", "refused")
    assert refusal.details["reason"] == f"{state} account"
    assert refusal.details["command"] == " ".join(["sciti", *(w for w in command if " " not in w)])


def test_the_sql_finding_an_expired_supervisor_cannot_unmask(instance):
    """The review's case: `sciti user expire supervisor --on 2026-01-01`, then `sciti sql --unmask`."""
    assert runner.invoke(app, ["user", "expire", "supervisor", "--on", "2026-01-01"]).exit_code == 0
    result = runner.invoke(
        app,
        ["sql", "--user", "supervisor", "--unmask", "--purpose", "x", "SELECT record_id FROM std.decl"],
    )
    assert result.exit_code == 1 and "expired on 2026-01-01" in result.output
    assert "record_id" not in result.output


def test_an_expired_account_in_the_future_still_acts_and_unlock_restores(instance):
    url = instance.resolved_ops_db_url
    with session_scope(url) as s:
        s.query(User).filter_by(username="supervisor").one().expires_at = datetime.now(UTC) + timedelta(
            days=1
        )
    assert runner.invoke(app, ["tables", "--user", "supervisor"]).exit_code == 0
    _make("locked", url)
    assert runner.invoke(app, ["tables", "--user", "supervisor"]).exit_code == 1
    assert runner.invoke(app, ["user", "unlock", "supervisor"]).exit_code == 0
    assert runner.invoke(app, ["tables", "--user", "supervisor"]).exit_code == 0


def _leaves(group, path="sciti"):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaves(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def test_every_command_that_acts_as_an_account_is_guarded():
    """Structural: an option read from SCITI_USER is how a command names the account it acts as;
    every such command is wrapped by the root's check, and no --user option escapes it."""
    guarded = []
    for path, command in _leaves(typer.main.get_command(app)):
        for param in command.params:
            names = getattr(param, "opts", [])
            if "--user" in names:
                assert param.envvar == "SCITI_USER", f"{path}: --user is not read from SCITI_USER"
            if getattr(param, "envvar", None) == "SCITI_USER":
                assert getattr(command.callback, "acting_guard", False), f"{path} is not guarded"
                guarded.append(path)
    assert {"sciti sql", "sciti tables", "sciti secrets list", "sciti risk rule approve"} <= set(guarded)
