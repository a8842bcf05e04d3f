"""`sciti user expire|unlock|mfa-reset|dormant`: lifecycle from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sciti.access import (
    LOCK_AFTER_FAILURES,
    InvalidCredentials,
    create_user,
    enrol,
    get_user,
    load_instance_key,
    login,
    mfa_enabled,
)
from sciti.ops import User, session_scope
from tests.cli.test_admin import cli  # noqa: F401 (fixture)

PASSWORD = "harbour-lantern-quietly-7"


def test_expire_unlock_mfa_reset_and_dormant(cli, settings):  # noqa: F811
    run, url = cli
    with session_scope(url) as s:
        create_user(s, "bob", ["analyst"], password=PASSWORD)
        create_user(s, "old", ["viewer"], password=PASSWORD)
        s.query(User).filter_by(username="old").one().created_at = datetime.now(UTC) - timedelta(days=400)

    assert "bob expires 2020-01-01" in run("user", "expire", "bob", "--on", "2020-01-01")
    assert json.loads(run("user", "list", "--json"))[0]["state"] == "expired"
    run("user", "expire", "bob", "--never")
    assert "give either --on DATE or --never" in run("user", "expire", "bob", code=1)
    assert "is not a date" in run("user", "expire", "bob", "--on", "soon", code=1)

    for _ in range(LOCK_AFTER_FAILURES):
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            login(s, "bob", "wrong-wrong-wrong", 30)
    assert json.loads(run("user", "list", "--json"))[0]["state"] == "locked"
    run("user", "unlock", "bob")
    with session_scope(url) as s:
        assert login(s, "bob", PASSWORD, 30).token

    with session_scope(url) as s:
        enrol(s, get_user(s, "bob"), load_instance_key(settings.home))
    assert "MFA of bob removed" in run("user", "mfa-reset", "bob")
    with session_scope(url) as s:
        assert not mfa_enabled(s, get_user(s, "bob").id)

    report = json.loads(run("user", "dormant", "--days", "365", "--json"))
    assert [r["username"] for r in report] == ["old"] and report[0]["days_idle"] >= 400
    assert "no login in 365 days" in run("user", "dormant", "--days", "365")
