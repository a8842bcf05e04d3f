"""`sciti secrets ...`: values from stdin only, never printed; changes as a named account."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sciti.access import create_user
from sciti.access.secrets import SecretsService, forget
from sciti.cli.main import app
from sciti.ops import migrate, session_scope
from sciti.settings import Settings, get_settings

runner = CliRunner()
VALUE = "cli-Secret-Value-xyz"


@pytest.fixture
def instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SCITI_HOME", str(settings.home))
    get_settings.cache_clear()
    forget()
    s = get_settings()
    migrate(s.resolved_ops_db_url)
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "erin", ["data_engineer"], service=True)
        create_user(session, "sam", ["security_officer"], service=True)
    yield s
    get_settings.cache_clear()


def test_put_list_rotate_share_delete(instance: Settings) -> None:
    out = runner.invoke(
        app, ["secrets", "put", "kcs-db", "-u", "erin", "-d", "KCS reader"], input=VALUE + "\n"
    )
    assert out.exit_code == 0, out.output
    assert "version 1" in out.output
    assert SecretsService(instance).backend.get("kcs-db").value == VALUE  # the newline is not kept
    out = runner.invoke(app, ["secrets", "rotate", "kcs-db", "-u", "erin"], input="second")
    assert out.exit_code == 0 and "version 2" in out.output
    out = runner.invoke(app, ["secrets", "get-metadata", "kcs-db", "-u", "sam"])
    meta = json.loads(out.output)
    assert (meta["version"], meta["shared_with"], meta["description"]) == (2, ["data_engineer"], "KCS reader")
    out = runner.invoke(app, ["secrets", "list", "-u", "sam"])
    assert "kcs-db" in out.output
    out = runner.invoke(app, ["secrets", "share", "kcs-db", "administrator", "data_engineer", "-u", "erin"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["secrets", "delete", "kcs-db", "-u", "erin", "--yes"])
    assert out.exit_code == 0 and "deleted" in out.output


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["secrets", "put", "x", "-u", "sam"], "lacks the secrets.manage permission"),
        (["secrets", "put", "x"], "give --user NAME"),
        (["secrets", "list", "-u", "nobody"], "does not exist"),
        (["secrets", "rotate", "missing", "-u", "erin"], "no secret named 'missing'"),
    ],
)
def test_refusals_name_the_reason(instance: Settings, args, reason) -> None:
    out = runner.invoke(app, args, input="v")
    assert out.exit_code == 1
    assert reason in out.output.replace("\n", "")


def test_the_value_is_never_an_argument_nor_printed(instance: Settings) -> None:
    out = runner.invoke(app, ["secrets", "put", "kcs-db", VALUE, "-u", "erin"], input=VALUE)
    assert out.exit_code != 0  # no positional value
    runner.invoke(app, ["secrets", "put", "kcs-db", "-u", "erin"], input=VALUE)
    for args in (
        ["secrets", "list", "-u", "erin", "--json"],
        ["secrets", "get-metadata", "kcs-db", "-u", "erin"],
    ):
        assert VALUE not in runner.invoke(app, args).output


def test_rekey_is_for_administrators_and_keeps_values(instance: Settings) -> None:
    with session_scope(instance.resolved_ops_db_url) as session:
        create_user(session, "root", ["administrator"], service=True)
    runner.invoke(app, ["secrets", "put", "kcs-db", "-u", "erin"], input=VALUE)
    out = runner.invoke(app, ["secrets", "rekey", "-u", "erin"])
    assert out.exit_code == 1 and "only an administrator" in out.output
    out = runner.invoke(app, ["secrets", "rekey", "-u", "root"])
    assert out.exit_code == 0 and "1 versions re-wrapped" in out.output, out.output
    assert SecretsService(instance).backend.get("kcs-db").value == VALUE
