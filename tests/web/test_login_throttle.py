"""The web login and password pages are throttled like the API (decision 0082): failures on one
count against the address for the other, and a blocked address learns nothing from either."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sciti.access import create_user, list_entries, throttle
from sciti.api.app import create_app
from sciti.ops import User, migrate, session_scope
from tests.web.conftest import login_csrf

PASSWORD = "Lantern-Orbit-Quarry-42"
WRONG = "Summer2026!-guess"
LIMIT = 2


@pytest.fixture
def web(settings, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", LIMIT)
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "vic", ["viewer"], password=PASSWORD)
    with TestClient(create_app(settings)) as client:
        yield client, settings.resolved_ops_db_url


def _login(client: TestClient, password: str):
    form = {"username": "vic", "password": password, "csrf_token": login_csrf(client)}
    return client.post("/ui/login", data=form, follow_redirects=False)


def _password(client: TestClient, current: str, new: str):
    form = {"username": "vic", "password": current, "new_password": new, "csrf_token": login_csrf(client)}
    return client.post("/ui/password", data=form, follow_redirects=False)


def test_a_blocked_address_learns_nothing_from_the_password_page(web):
    client, url = web
    for _ in range(LIMIT):
        assert _login(client, WRONG).status_code == 401
    for current in (PASSWORD, WRONG):  # was: "too weak" for the right one, "wrong" for the other
        page = _password(client, current, "password")
        assert page.status_code == 429
        assert "Too many failed logins from this address" in page.text
        assert "too weak" not in page.text
    with session_scope(url) as s:
        assert not list_entries(s, action="password.change")


def test_wrong_passwords_on_the_password_page_block_the_login(web):
    client, url = web
    for _ in range(LIMIT):
        assert _password(client, WRONG, "violet-ferry-morning-42").status_code == 422  # the form again
    page = _login(client, PASSWORD)
    assert page.status_code == 429 and "sciti_session" not in page.cookies
    with session_scope(url) as s:
        assert s.query(User).filter_by(username="vic").one().failed_logins == LIMIT
        steps = [e.details.get("step") for e in list_entries(s, action="login.failed")]
    assert steps == ["password.change"] * LIMIT
