"""Account administration over HTTP: create, list, disable/enable, expire, unlock, resets, dormant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sciti.access import LOCK_AFTER_FAILURES
from tests.api.conftest import assert_envelope, bearer, token_factory

PASSWORD = "harbour-lantern-quietly-7"


def _first_login(client, username: str, one_time: str) -> str:
    changed = client.post(
        "/api/v1/auth/password",
        json={"username": username, "current_password": one_time, "new_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_account_lifecycle_over_http(sqlite_api_settings):
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    made = client.post("/api/v1/users", headers=admin, json={"username": "Dana", "roles": ["analyst"]})
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["user"]["username"] == "dana" and body["user"]["state"] == "must_change_password"
    token = _first_login(client, "dana", body["one_time_password"])

    listed = {u["username"]: u for u in client.get("/api/v1/users", headers=admin).json()}
    assert listed["dana"]["state"] == "active" and listed["dana"]["tokens"] == 1

    # disable: tokens die at once; enable: the account works again (with a new login)
    assert client.post("/api/v1/users/dana/disable", headers=admin).json()["tokens_revoked"] == 1
    assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    client.post("/api/v1/users/dana/enable", headers=admin)
    token = client.post("/api/v1/auth/token", json={"username": "dana", "password": PASSWORD}).json()[
        "access_token"
    ]

    # expiry in the past ends the account; clearing it restores it
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        client.post("/api/v1/users/dana/expire", headers=admin, json={"expires_at": past}).json()["state"]
        == "expired"
    )
    assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    refused = client.post("/api/v1/auth/token", json={"username": "dana", "password": PASSWORD})
    assert_envelope(refused, 401, "invalid_credentials")
    client.post("/api/v1/users/dana/expire", headers=admin, json={"expires_at": None})

    # lockout, then an administrator unlocks
    for _ in range(LOCK_AFTER_FAILURES):
        client.post("/api/v1/auth/token", json={"username": "dana", "password": "wrong-wrong-wrong"})
    assert client.get("/api/v1/users/dana", headers=admin).json()["state"] == "locked"
    assert client.post("/api/v1/users/dana/unlock", headers=admin).json()["state"] == "active"

    # reset password: a new one-time password, forced change
    reset = client.post("/api/v1/users/dana/reset-password", headers=admin).json()
    assert reset["must_change_password"] is True
    forced = client.post(
        "/api/v1/auth/token", json={"username": "dana", "password": reset["one_time_password"]}
    )
    assert_envelope(forced, 403, "password_change_required")


def test_dormant_report(sqlite_api_settings):
    from sciti.ops import User, session_scope
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    for name in ("old-timer", "never-used", "fresh"):
        client.post("/api/v1/users", headers=admin, json={"username": name, "roles": ["viewer"]})
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        for user in s.query(User).filter(User.username.in_(["old-timer", "never-used"])):
            user.created_at = long_ago
        s.query(User).filter_by(username="old-timer").one().last_login_at = long_ago + timedelta(days=10)
        s.query(User).filter_by(username="fresh").one().last_login_at = datetime.now(UTC)
    report = client.get("/api/v1/users/dormant", headers=admin, params={"days": 90}).json()
    by_name = {d["username"]: d for d in report}
    assert set(by_name) == {"old-timer", "never-used"}
    assert by_name["old-timer"]["days_idle"] == 190 and by_name["never-used"]["last_login_at"] is None
    assert client.get("/api/v1/users/dormant", headers=admin, params={"days": 195}).json()[0]["username"] == (
        "never-used"
    )


def test_admin_errors_name_the_user(sqlite_api_settings):
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    err = assert_envelope(client.post("/api/v1/users/ghost/disable", headers=admin), 400, "account_error")
    assert "ghost" in err["message"]
    bad = client.post("/api/v1/users", headers=admin, json={"username": "x1", "roles": ["emperor"]})
    assert "emperor" in assert_envelope(bad, 400, "account_error")["message"]
