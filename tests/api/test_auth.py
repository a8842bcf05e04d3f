"""Logging in, first-login password change, lockout, logout, /me — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from sciti.access import LOCK_AFTER_FAILURES, create_user
from sciti.ops import User, session_scope
from tests.api.conftest import assert_envelope, bearer

PASSWORD = "harbour-lantern-quietly-7"


@pytest.fixture
def alice(api_settings):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD, office_code="KR01")
    return "alice"


@pytest.mark.parametrize("as_form", [True, False], ids=["form", "json"])
def test_login_gives_a_token_that_works(client, alice, as_form):
    creds = {"username": "Alice", "password": PASSWORD}  # usernames are case-insensitive
    response = (
        client.post("/api/v1/auth/token", data=creds)
        if as_form
        else client.post("/api/v1/auth/token", json=creds)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("sciti_")
    me = client.get("/api/v1/me", headers=bearer(body["access_token"])).json()
    assert me["username"] == "alice"
    assert me["roles"] == ["analyst"] and me["office_code"] == "KR01"
    assert "sql.query" in me["permissions"] and "users.manage" not in me["permissions"]


def test_refusals_do_not_reveal_whether_the_user_exists(client, alice):
    wrong = client.post("/api/v1/auth/token", json={"username": "alice", "password": "wrong-password-123"})
    unknown = client.post(
        "/api/v1/auth/token", json={"username": "mallory", "password": "wrong-password-123"}
    )
    a, b = (
        assert_envelope(wrong, 401, "invalid_credentials"),
        assert_envelope(unknown, 401, "invalid_credentials"),
    )
    a.pop("request_id"), b.pop("request_id")
    assert a == b


MISSING = [
    ({}, ["username", "password"]),
    ({"username": "alice"}, ["password"]),
    ({"password": "x"}, ["username"]),
]


def test_token_endpoint_lists_missing_fields(client):
    for body, fields in MISSING:
        err = assert_envelope(client.post("/api/v1/auth/token", json=body), 422, "validation_error")
        assert [f["field"] for f in err["details"]["fields"]] == fields, body


def test_lockout_after_repeated_failures(api_settings, client, alice):
    for _ in range(LOCK_AFTER_FAILURES):
        assert_envelope(
            client.post("/api/v1/auth/token", json={"username": "alice", "password": "not-the-password"}),
            401,
            "invalid_credentials",
        )
    # now even the right password is refused, with the same generic answer
    locked = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert_envelope(locked, 401, "invalid_credentials")
    with session_scope(api_settings.resolved_ops_db_url) as s:
        user = s.query(User).filter_by(username="alice").one()
        assert user.locked_until is not None


def test_first_login_must_change_the_one_time_password(api_settings, client):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        _, one_time = create_user(s, "bob", ["viewer"])
    refused = client.post("/api/v1/auth/token", json={"username": "bob", "password": one_time})
    err = assert_envelope(refused, 403, "password_change_required")
    assert "/api/v1/auth/password" in err["remedy"]

    weak = client.post(
        "/api/v1/auth/password",
        json={"username": "bob", "current_password": one_time, "new_password": "Password2024!"},
    )
    err = assert_envelope(weak, 422, "weak_password")
    assert err["details"]["problems"] == ["it is a commonly used or breached password"]

    changed = client.post(
        "/api/v1/auth/password",
        json={"username": "bob", "current_password": one_time, "new_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert_envelope(
        client.post("/api/v1/auth/token", json={"username": "bob", "password": one_time}),
        401,
        "invalid_credentials",
    )
    assert (
        client.post("/api/v1/auth/token", json={"username": "bob", "password": PASSWORD}).status_code == 200
    )


NO_CREDENTIAL = [
    ({}, 401, "authentication_required"),
    ({"new_password": "x"}, 401, "authentication_required"),
    (
        {"username": "alice", "current_password": "wrong-one-here", "new_password": "a-fine-new-phrase"},
        401,
        "invalid_credentials",
    ),
    ({"username": "alice", "current_password": PASSWORD}, 422, "validation_error"),
]


def test_password_change_needs_a_credential(client, alice):
    for body, status, code in NO_CREDENTIAL:
        assert_envelope(client.post("/api/v1/auth/password", json=body), status, code)


def test_password_change_with_a_token_revokes_it(client, alice):
    token = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}).json()[
        "access_token"
    ]
    other = client.post(
        "/api/v1/auth/password",
        headers=bearer(token),
        json={"username": "someone-else", "current_password": PASSWORD, "new_password": "x"},
    )
    assert_envelope(other, 403, "forbidden")
    ok = client.post(
        "/api/v1/auth/password",
        headers=bearer(token),
        json={"current_password": PASSWORD, "new_password": "violet-ferry-morning-42"},
    )
    assert ok.status_code == 200, ok.text
    assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")


def test_logout_revokes_only_that_token(client, alice):
    def login() -> str:
        r = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD})
        return r.json()["access_token"]

    first, second = login(), login()
    assert client.post("/api/v1/auth/logout", headers=bearer(first)).json() == {"revoked": True}
    assert_envelope(client.get("/api/v1/me", headers=bearer(first)), 401, "invalid_token")
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 200
