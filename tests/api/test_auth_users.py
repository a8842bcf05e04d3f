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


def test_unknown_fields_are_refused_naming_the_closest(sqlite_api_settings):
    """A misspelt ``office`` once made an account bound to no office: it saw every office."""
    from sciti.ops import User, session_scope
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    body = {"username": "kr01officer", "roles": ["targeting_officer"], "office": "KTCT-QZ"}
    err = assert_envelope(client.post("/api/v1/users", headers=admin, json=body), 422, "validation_error")
    (field,) = err["details"]["fields"]
    assert field["field"] == "office" and field["type"] == "extra_forbidden"
    assert "did you mean office_code?" in field["problem"]
    assert "KTCT-QZ" not in str(err)  # the value sent is not echoed
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        assert s.query(User).filter_by(username="kr01officer").first() is None

    # Every body of the user administration is strict, and a blank office is no office at all.
    expiry = client.post("/api/v1/users/u-administrator/expire", headers=admin, json={"expire_at": None})
    assert assert_envelope(expiry, 422, "validation_error")["details"]["fields"][0]["field"] == "expire_at"
    blank = client.post(
        "/api/v1/users", headers=admin, json={"username": "blank", "roles": ["viewer"], "office_code": ""}
    )
    assert_envelope(blank, 422, "validation_error")
    assert client.post("/api/v1/users", headers=admin, json={**body, "office_code": "11"}).status_code == 422
    body.pop("office")
    made = client.post("/api/v1/users", headers=admin, json={**body, "office_code": "11"})
    assert made.status_code == 200 and made.json()["user"]["office_code"] == "11", made.text


def test_the_office_is_in_the_audit_entry(sqlite_api_settings):
    from sciti.access import list_entries
    from sciti.ops import session_scope
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    for name, office in (("hkia-officer", "HKIA"), ("roaming", None)):
        body = {"username": name, "roles": ["targeting_officer"], "office_code": office}
        assert client.post("/api/v1/users", headers=admin, json=body).status_code == 200
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        made = {e.target: e.details for e in list_entries(s, limit=50) if e.action == "user.create"}
    assert made["user:hkia-officer"]["office_code"] == "HKIA"
    assert made["user:roaming"] == {"roles": ["targeting_officer"], "office_code": None, "service": False}


def test_a_repeated_word_is_not_a_password(sqlite_api_settings):
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    admin = bearer(token_factory(sqlite_api_settings)("administrator"))
    one_time = client.post(
        "/api/v1/users", headers=admin, json={"username": "erin", "roles": ["analyst"]}
    ).json()["one_time_password"]
    for weak in ("customs customs customs", "Customs-CUSTOMS-customs!", "lanternlanternlantern"):
        refused = client.post(
            "/api/v1/auth/password",
            json={"username": "erin", "current_password": one_time, "new_password": weak},
        )
        err = assert_envelope(refused, 422, "weak_password")
        assert "it is one word or group of characters repeated" in err["details"]["problems"], weak
    _first_login(client, "erin", one_time)  # a passphrase of different words is still taken
