"""`sciti user ...`: accounts from the command line, secrets printed once."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sciti.access import resolve_token
from sciti.cli.admin import parse_ttl
from sciti.cli.main import app
from sciti.ops import ApiToken, User, migrate, session_scope
from sciti.settings import get_settings
from tests.conftest import settings_env

ONE_TIME = re.compile(r"password: ([a-z0-9]{5}(?:-[a-z0-9]{5}){3})")
TOKEN = re.compile(r"token:\s+(sciti_[A-Za-z0-9_-]{43})")


@pytest.fixture
def cli(settings, monkeypatch):
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    migrate(settings.resolved_ops_db_url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    yield run, settings.resolved_ops_db_url
    get_settings.cache_clear()


def test_add_list_passwd_disable_enable(cli):
    run, url = cli
    out = run("user", "add", "bob", "--role", "analyst", "--role", "viewer", "--office", "KR01")
    first = ONE_TIME.search(out).group(1)
    users = json.loads(run("user", "list", "--json"))
    assert users == [
        {
            "username": "bob",
            "display_name": "",
            "roles": ["analyst", "viewer"],
            "office": "KR01",
            "state": "must change password",
            "password": True,
            "tokens": 0,
            "last_login": None,
        }
    ]
    second = ONE_TIME.search(run("user", "passwd", "bob")).group(1)
    assert second != first
    assert "disabled bob" in run("user", "disable", "bob")
    assert json.loads(run("user", "list", "--json"))[0]["state"] == "disabled"
    run("user", "token", "bob", code=1)  # no tokens for a disabled account
    run("user", "enable", "bob")
    with session_scope(url) as s:
        user = s.scalars(select(User)).one()
        assert not user.disabled and user.must_change_password


def test_token_is_printed_once_and_stored_as_a_hash(cli):
    run, url = cli
    out = run("user", "add", "prometheus", "--role", "monitoring", "--service")
    assert ONE_TIME.search(out) is None
    token = TOKEN.search(run("user", "token", "prometheus", "--ttl", "90d", "--label", "scraper")).group(1)
    with session_scope(url) as s:
        principal = resolve_token(s, token)
        row = s.scalars(select(ApiToken)).one()
        assert principal.permissions == frozenset({"metrics"})
        assert row.label == "scraper" and token not in row.token_hash
        assert (row.expires_at - row.created_at).days == 90
    assert json.loads(run("user", "list", "--json"))[0]["tokens"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("user", "add", "bob", "--role", "wizard"), "unknown role"),
        (("user", "passwd", "ghost"), "no user 'ghost'"),
        (("user", "disable", "ghost"), "no user 'ghost'"),
        (("user", "token", "ghost"), "no user 'ghost'"),
    ],
)
def test_mistakes_exit_non_zero_with_a_reason(cli, args, message):
    run, _ = cli
    assert message in run(*args, code=1)


@pytest.mark.parametrize(
    ("text", "minutes"), [("30", 30), ("30m", 30), ("8h", 480), ("90d", 129600), (" 2H ", 120)]
)
def test_parse_ttl(text, minutes):
    assert parse_ttl(text) == minutes


@pytest.mark.parametrize("text", ["0", "-5m", "1w", "soon", ""])
def test_parse_ttl_refuses(text):
    import typer

    with pytest.raises(typer.BadParameter):
        parse_ttl(text)
