"""Login CSRF: a login form post needs the signed pre-session token; the session id is new at login."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from sciti.access import SESSION_COOKIE, CsrfFailed, create_user
from sciti.access.login_csrf import LOGIN_CSRF_COOKIE, MAX_AGE_SECONDS, check_login_csrf, issue_login_csrf
from sciti.api.app import create_app
from sciti.ops import session_scope

KEY = bytes(range(32))
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PASSWORD = "harbour-lantern-quietly-7"


def test_a_fresh_token_passes_when_cookie_and_form_agree():
    token = issue_login_csrf(KEY, now=NOW)
    check_login_csrf(KEY, token, token, now=NOW + timedelta(minutes=5))


def _tampered(token: str) -> str:
    issued, nonce, mac = token.split(".")
    return f"{issued}.{nonce[:-1]}{'A' if nonce[-1] != 'A' else 'B'}.{mac}"


@pytest.mark.parametrize(
    ("cookie", "form", "key", "at"),
    [
        (None, "T", KEY, NOW),  # no cookie: the form came from another browser or site
        ("T", None, KEY, NOW),  # no token in the form
        ("T", "other", KEY, NOW),  # cookie and form disagree
        ("tampered", "tampered", KEY, NOW),  # a value the server never signed (planted cookie)
        ("T", "T", bytes(32), NOW),  # signed with another instance's key
        ("T", "T", KEY, NOW + timedelta(seconds=MAX_AGE_SECONDS + 5)),  # too old
        ("garbage", "garbage", KEY, NOW),
    ],
)
def test_bad_tokens_are_refused(cookie, form, key, at):
    token = issue_login_csrf(KEY, now=NOW)
    values = {"T": token, "tampered": _tampered(token), "garbage": "x.y", None: None, "other": "z"}
    with pytest.raises(CsrfFailed):
        check_login_csrf(key, values[cookie], values[form], now=at)


@pytest.fixture
def app(sqlite_api_settings):
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return create_app(sqlite_api_settings)


def _form_token(client: TestClient) -> str:
    page = client.get("/ui/login")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"].lower()
    assert LOGIN_CSRF_COOKIE in cookie and "httponly" in cookie and "samesite=strict" in cookie
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def test_web_login_without_the_token_is_refused(app):
    form = {"username": "alice", "password": PASSWORD}
    with TestClient(app) as victim:  # a cross-site page posting the attacker's credentials
        refused = victim.post("/ui/login", data=form, follow_redirects=False)
        assert refused.status_code == 403
        assert SESSION_COOKIE not in refused.cookies
        # A token copied from another browser does not help without that browser's cookie.
        with TestClient(app) as attacker:
            stolen = _form_token(attacker)
        refused = victim.post("/ui/login", data={**form, "csrf_token": stolen}, follow_redirects=False)
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies
        # The refusal page carries a fresh token: the person can simply submit again.
        retry = re.search(r'name="csrf_token" value="([^"]+)"', refused.text)
        assert retry
        ok = victim.post("/ui/login", data={**form, "csrf_token": retry.group(1)}, follow_redirects=False)
        assert ok.status_code == 303, ok.text


def test_web_login_with_the_token_gets_a_new_session_id(app):
    with TestClient(app) as browser:
        form = {"username": "alice", "password": PASSWORD, "csrf_token": _form_token(browser)}
        first = browser.post("/ui/login", data=form, follow_redirects=False)
        assert first.status_code == 303
        old = first.cookies[SESSION_COOKIE]
        assert 'sciti_login_csrf=""' in first.headers.get("set-cookie", "")  # the token is spent
        # Log in again from the same browser (the old cookie is sent): a new id, the old one ended.
        form["csrf_token"] = _form_token(browser)
        second = browser.post("/ui/login", data=form, follow_redirects=False)
        assert second.status_code == 303
        new = second.cookies[SESSION_COOKIE]
        assert new != old
    with TestClient(app, cookies={SESSION_COOKIE: old}) as fixated:
        assert fixated.get("/api/v1/me").status_code == 401
    with TestClient(app, cookies={SESSION_COOKIE: new}) as current:
        assert current.get("/api/v1/me").json()["username"] == "alice"


def test_a_forged_session_id_is_not_adopted_at_login(app):
    with TestClient(app, cookies={SESSION_COOKIE: "attacker-chosen-id"}) as browser:
        form = {"username": "alice", "password": PASSWORD, "csrf_token": _form_token(browser)}
        answer = browser.post("/ui/login", data=form, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.cookies[SESSION_COOKIE] != "attacker-chosen-id"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("json", 200),  # application/json: a cross-site page cannot send it without a preflight
        ("form-without-token", 403),
        ("text-plain-json", 403),  # what a cross-site <form enctype="text/plain"> can send
        ("form-with-token", 200),
    ],
)
def test_api_session_login_needs_the_token_unless_json(app, kind, status):
    creds = {"username": "alice", "password": PASSWORD}
    with TestClient(app, raise_server_exceptions=False) as client:
        if kind == "json":
            answer = client.post("/api/v1/auth/session", json=creds)
        elif kind == "form-without-token":
            answer = client.post("/api/v1/auth/session", data=creds)
        elif kind == "text-plain-json":
            body = json.dumps(creds)
            answer = client.post("/api/v1/auth/session", content=body, headers={"Content-Type": "text/plain"})
        else:
            answer = client.post("/api/v1/auth/session", data={**creds, "csrf_token": _form_token(client)})
        assert answer.status_code == status, answer.text
        if status == 403:
            assert answer.json()["error"]["code"] == "csrf_failed"
            assert SESSION_COOKIE not in answer.cookies
        else:
            assert answer.cookies[SESSION_COOKIE]
