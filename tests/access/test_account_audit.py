"""Logins, failed logins, lockouts, MFA changes and administrative actions land in the audit trail."""

from __future__ import annotations

import pytest

from sciti.access import LOCK_AFTER_FAILURES, InvalidCredentials, create_user, list_entries, login, verify
from sciti.ops import session_scope
from tests.api.conftest import bearer, make_client, token_factory
from tests.cli.test_admin import cli  # noqa: F401 (fixture)

PASSWORD = "harbour-lantern-quietly-7"


def test_account_events_are_audited(sqlite_api_settings):
    url = sqlite_api_settings.resolved_ops_db_url
    with session_scope(url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
        login(s, "alice", PASSWORD, 30, client="192.0.2.1")
    for _ in range(LOCK_AFTER_FAILURES):
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            login(s, "alice", "not-the-right-one", 30, client="192.0.2.2")
    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    assert client.post("/api/v1/users/alice/unlock", headers=admin).status_code == 200
    token = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}).json()
    enrol = client.post(
        "/api/v1/mfa/enrol", headers=bearer(token["access_token"]), json={"password": PASSWORD}
    )
    assert enrol.status_code == 200, enrol.text

    with session_scope(url) as s:
        entries = list(reversed(list_entries(s, limit=500)))
        chain = verify(s)
    seen = [(e.actor, e.action, e.outcome) for e in entries]
    assert ("alice", "login", "ok") in seen
    assert seen.count(("alice", "login.failed", "refused")) == LOCK_AFTER_FAILURES
    assert ("alice", "account.locked", "ok") in seen
    assert ("u-administrator", "user.unlock", "ok") in seen
    assert ("alice", "mfa.enrol", "ok") in seen
    failed = next(e for e in entries if e.action == "login.failed")
    assert failed.source == "192.0.2.2" and failed.details == {"reason": "wrong password"}
    # nothing secret in the trail
    assert not any(PASSWORD in str(e.details) or "otpauth" in str(e.details) for e in entries)
    assert chain.ok, chain


def test_sciti_user_add_audits_the_office(cli):  # noqa: F811
    from sciti.access import list_entries

    run, url = cli
    run("user", "add", "hkia-officer", "--role", "targeting_officer", "--office", "HKIA")
    run("user", "add", "everywhere", "--role", "analyst")
    with session_scope(url) as s:
        made = {e.target: e.details for e in list_entries(s, limit=50) if e.action == "user.create"}
    assert made["user:hkia-officer"]["office_code"] == "HKIA"
    assert made["user:everywhere"]["office_code"] is None
    # A blank office is refused, not stored as "every office".
    assert "invalid office code" in run("user", "add", "blank", "--role", "analyst", "--office", " ", code=1)
