"""Accounts and tokens on the operational database (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from sciti.access import (
    LOCK_AFTER_FAILURES,
    LOCK_MINUTES,
    AccountError,
    InvalidCredentials,
    InvalidToken,
    PasswordChangeRequired,
    authenticate,
    change_password,
    create_user,
    issue_token,
    login,
    reset_password,
    resolve_token,
    revoke_token,
    set_disabled,
)
from sciti.access.accounts import now_utc
from sciti.ops import ApiToken, User, migrate, session_scope

PASSWORD = "harbour-lantern-quietly-7"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request):
    s = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(s.resolved_ops_db_url)
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "alice", ["analyst"], password=PASSWORD)
    return s.resolved_ops_db_url


def test_login_and_token_round_trip(url):
    with session_scope(url) as s:
        issued = login(s, "alice", PASSWORD, ttl_minutes=30)
    with session_scope(url) as s:
        principal = resolve_token(s, issued.token)
        stored = s.scalars(select(ApiToken)).one()
        user = s.scalars(select(User).where(User.username == "alice")).one()
    assert principal.username == "alice" and principal.can("sql.query") and not principal.can("metrics")
    # only the SHA-256 is stored, never the token
    assert stored.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in (stored.token_hash, stored.label)
    assert user.last_login_at is not None and user.password_hash.startswith("$argon2id$")


REFUSED = [("alice", "wrong-password-x"), ("nobody", PASSWORD), ("ALICE ", "nope-nope-nope")]


def test_refusals_are_all_the_same_error(url):
    for username, password in REFUSED:
        with session_scope(url) as s, pytest.raises(InvalidCredentials) as info:
            authenticate(s, username, password)
        assert info.value.code == "invalid_credentials"


def test_lockout_counts_failures_and_expires(url):
    t0 = now_utc()
    for i in range(LOCK_AFTER_FAILURES):
        with pytest.raises(InvalidCredentials), session_scope(url) as s:  # each failure survives the rollback
            authenticate(s, "alice", f"wrong-{i}", now=t0)
    with pytest.raises(InvalidCredentials), session_scope(url) as s:
        authenticate(s, "alice", PASSWORD, now=t0 + timedelta(minutes=LOCK_MINUTES - 1))
    with session_scope(url) as s:
        assert authenticate(s, "alice", PASSWORD, now=t0 + timedelta(minutes=LOCK_MINUTES, seconds=1))
    with session_scope(url) as s:
        user = s.scalars(select(User).where(User.username == "alice")).one()
        assert user.failed_logins == 0 and user.locked_until is None


def test_fewer_failures_than_the_limit_do_not_lock(url):
    for _ in range(LOCK_AFTER_FAILURES - 1):
        with pytest.raises(InvalidCredentials), session_scope(url) as s:
            authenticate(s, "alice", "wrong-password-x")
    with session_scope(url) as s:
        assert authenticate(s, "alice", PASSWORD).username == "alice"


@pytest.mark.parametrize("ttl", [1, 60])
def test_token_expiry(url, ttl):
    with session_scope(url) as s:
        issued = issue_token(s, s.scalars(select(User)).one(), ttl)
    later = now_utc() + timedelta(minutes=ttl, seconds=1)
    with session_scope(url) as s:
        assert resolve_token(s, issued.token).username == "alice"
        with pytest.raises(InvalidToken):
            resolve_token(s, issued.token, now=later)


def test_revoke_and_disable(url):
    with session_scope(url) as s:
        user = s.scalars(select(User)).one()
        a, b = issue_token(s, user, 60), issue_token(s, user, 60)
    with session_scope(url) as s:
        assert revoke_token(s, a.token_id) is True
        assert revoke_token(s, a.token_id) is False
    with session_scope(url) as s:
        with pytest.raises(InvalidToken):
            resolve_token(s, a.token)
        assert resolve_token(s, b.token)
        assert set_disabled(s, "alice") == 1
    with session_scope(url) as s:
        with pytest.raises(InvalidToken):
            resolve_token(s, b.token)
        with pytest.raises(InvalidCredentials):
            authenticate(s, "alice", PASSWORD)


def test_reset_forces_a_change_and_change_clears_it(url):
    with session_scope(url) as s:
        one_time = reset_password(s, "alice")
    with pytest.raises(PasswordChangeRequired), session_scope(url) as s:
        login(s, "alice", one_time, 60)
    with session_scope(url) as s:
        change_password(s, "alice", one_time, "violet-ferry-morning-42", client=None)
    with session_scope(url) as s:
        assert login(s, "alice", "violet-ferry-morning-42", 60).username == "alice"


BAD_USERS = [
    ("alice", ["viewer"], "already exists"),
    ("x", ["viewer"], "invalid username"),
    ("has space", ["viewer"], "invalid username"),
    ("newbie", ["wizard"], "unknown role"),
]


def test_create_user_refusals(url):
    for name, roles, message in BAD_USERS:
        with session_scope(url) as s, pytest.raises(AccountError, match=message):
            create_user(s, name, roles)


def test_service_accounts_cannot_log_in_with_a_password(url):
    with session_scope(url) as s:
        user, password = create_user(s, "prometheus", ["monitoring"], service=True)
        assert password is None and user.password_hash is None
        token = issue_token(s, user, 60).token
    with session_scope(url) as s:
        assert resolve_token(s, token).permissions == frozenset({"metrics"})
        with pytest.raises(InvalidCredentials):
            authenticate(s, "prometheus", "")
