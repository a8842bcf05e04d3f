"""Browser sessions: cookie attributes, CSRF on state-changing requests, session fixation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sciti.access import SESSION_COOKIE, create_user
from sciti.api.app import create_app
from sciti.ops import session_scope
from tests.api.conftest import assert_envelope, bearer, make_client

PASSWORD = "harbour-lantern-quietly-7"
CREDS = {"username": "alice", "password": PASSWORD}


@pytest.fixture
def alice(api_settings):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return "alice"


@pytest.fixture
def local(sqlite_api_settings) -> TestClient:
    """A client of an SQLite instance with alice (for the cases that do not depend on the database)."""
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return make_client(sqlite_api_settings)


def _login(client: TestClient, **kw) -> tuple[str, str]:
    answer = client.post("/api/v1/auth/session", json=CREDS, **kw)
    assert answer.status_code == 200, answer.text
    return answer.cookies[SESSION_COOKIE], answer.json()["csrf_token"]


def test_session_cookie_is_httponly_strict_and_works(client, alice):
    answer = client.post("/api/v1/auth/session", json=CREDS)
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http (a development server): a Secure cookie would be lost
    me = client.get("/api/v1/me")  # the client sends the cookie back, like a browser
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert client.get("/api/v1/auth/csrf").json()["csrf_token"] == answer.json()["csrf_token"]


def test_cookie_is_secure_over_https(sqlite_api_settings):
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    app = create_app(sqlite_api_settings)
    with TestClient(app, base_url="https://testserver") as client:
        answer = client.post("/api/v1/auth/session", json=CREDS)
    assert "secure" in answer.headers["set-cookie"].lower()


CSRF_CASES = [
    ({}, 403),  # no token: a forged cross-site form post
    ({"headers": {"X-CSRF-Token": "guessed"}}, 403),
    ("header", 200),
    ("form", 200),
]


@pytest.mark.parametrize(("how", "status"), CSRF_CASES, ids=["missing", "wrong", "header", "form"])
def test_state_changing_requests_with_the_cookie_need_the_csrf_token(local, how, status):
    client = local
    _, csrf = _login(client)
    if how == "header":
        kw: dict = {"headers": {"X-CSRF-Token": csrf}}
    elif how == "form":
        kw = {"data": {"csrf_token": csrf}}
    else:
        kw = how
    answer = client.post("/api/v1/auth/logout", **kw)
    if status == 403:
        assert_envelope(answer, 403, "csrf_failed")
        assert client.get("/api/v1/me").status_code == 200  # the session is still there
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"revoked": True}
        client.cookies.clear()
        assert client.get("/api/v1/me").status_code == 401


def test_a_bearer_token_needs_no_csrf_token(local):
    client = local
    token = client.post("/api/v1/auth/token", json=CREDS).json()["access_token"]
    client.post("/api/v1/auth/session", json=CREDS)  # a cookie too, ignored when a bearer is sent
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).json() == {"revoked": True}


def test_login_rotates_the_session_id_no_fixation(api_settings, client, alice):
    # The attacker obtains a valid session id (their own login, or one planted beforehand)...
    attacker = make_client(api_settings)
    with session_scope(api_settings.resolved_ops_db_url) as s:
        create_user(s, "mallory", ["viewer"], password="copper-kettle-dawn-river")
    planted = attacker.post(
        "/api/v1/auth/session", json={"username": "mallory", "password": "copper-kettle-dawn-river"}
    ).cookies[SESSION_COOKIE]
    # ... and plants it in the victim's browser, who then logs in.
    client.cookies.set(SESSION_COOKIE, planted)
    fresh, _ = _login(client)
    assert fresh != planted
    # the planted id is ended by the login: it gives the attacker nothing, not even their own session
    attacker.cookies.clear()
    attacker.cookies.set(SESSION_COOKIE, planted)
    assert_envelope(attacker.get("/api/v1/me"), 401, "invalid_token")
    assert client.get("/api/v1/me").json()["username"] == "alice"


def test_a_session_id_chosen_by_the_client_is_never_accepted(local):
    client = local
    client.cookies.set(SESSION_COOKIE, "attacker-chosen-value-0123456789")
    assert_envelope(client.get("/api/v1/me"), 401, "invalid_token")
    fresh, _ = _login(client)
    assert fresh != "attacker-chosen-value-0123456789"


def test_password_change_ends_sessions(client, alice):
    _, csrf = _login(client)
    changed = client.post(
        "/api/v1/auth/password",
        headers={"X-CSRF-Token": csrf},
        json={"current_password": PASSWORD, "new_password": "violet-ferry-morning-42"},
    )
    assert changed.status_code == 200, changed.text
    assert_envelope(client.get("/api/v1/me"), 401, "invalid_token")


def test_session_login_refuses_like_the_token_endpoint(local):
    client = local
    wrong = client.post("/api/v1/auth/session", json={"username": "alice", "password": "not-it-at-all"})
    assert_envelope(wrong, 401, "invalid_credentials")
    assert SESSION_COOKIE not in wrong.cookies
