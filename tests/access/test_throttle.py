"""Per-address throttling of failed logins (password spraying) beside the per-account lockout."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sciti.access import InvalidCredentials, LoginThrottled, create_user, list_entries, login, throttle
from sciti.ops import migrate, session_scope
from sciti.ops.account_tables import LoginThrottle
from tests.api.conftest import assert_envelope, make_client

PASSWORD = "harbour-lantern-quietly-7"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_one_address_spraying_many_accounts_is_throttled(sqlite_api_settings, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 5)  # the real limit is 50; same code path
    url = sqlite_api_settings.resolved_ops_db_url
    with session_scope(url) as s:
        for name in ("alice", "bob", "carol", "dan", "erin"):
            create_user(s, name, ["viewer"], password=PASSWORD)
    for name in ("alice", "bob", "carol", "dan", "erin"):  # one guess per account: no account locks
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            login(s, name, "Summer2026!-guess", 30, client="203.0.113.9", now=T0)
    # the address is blocked now, even with a right password; another address is not
    with session_scope(url) as s, pytest.raises(LoginThrottled) as refused:
        login(s, "alice", PASSWORD, 30, client="203.0.113.9", now=T0 + timedelta(minutes=1))
    assert refused.value.http_status == 429 and refused.value.details["retry_after_seconds"] > 0
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, client="198.51.100.7", now=T0 + timedelta(minutes=1)).token
    # the block ends
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, client="203.0.113.9", now=T0 + timedelta(minutes=16)).token


def test_throttled_logins_are_audited_without_flooding_the_trail(sqlite_api_settings, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 3)
    url = sqlite_api_settings.resolved_ops_db_url
    address = "203.0.113.77"
    for i in range(3):
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            login(s, f"nobody{i}", "Summer2026!-guess", 30, client=address, now=T0)
    refused = 40  # the address keeps spraying while blocked, a new account each time
    for i in range(refused):
        with session_scope(url) as s, pytest.raises(LoginThrottled):
            login(s, f"Target{i}", "Summer2026!-guess", 30, client=address, now=T0 + timedelta(minutes=1))
    with session_scope(url) as s:
        entries = list_entries(s, action="login.throttled", limit=500)[::-1]
    counts = [e.details["refusals"] for e in entries]
    # Each of the first ten refusals, then the 16th and 32nd: 12 entries for 40 refusals.
    assert counts == [*range(1, throttle.AUDIT_FIRST_REFUSALS + 1), 16, 32]
    first = entries[0]
    assert (first.actor, first.source, first.outcome) == ("target0", address, "refused")
    assert "blocked" in first.details["reason"] and first.details["blocked_until"]
    # After the block a failure counts from one again (refusals are not failures).
    with session_scope(url) as s, pytest.raises(InvalidCredentials):
        login(s, "nobody", "Summer2026!-guess", 30, client=address, now=T0 + timedelta(minutes=20))
    with session_scope(url) as s:
        assert s.get(LoginThrottle, address).failures == 1


def test_a_throttled_api_login_answers_429_and_is_audited(sqlite_api_settings, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 2)
    url = sqlite_api_settings.resolved_ops_db_url
    with session_scope(url) as s:
        create_user(s, "alice", ["viewer"], password=PASSWORD)
    with make_client(sqlite_api_settings) as client:  # the test client's address is "testclient"
        for _ in range(2):
            wrong = client.post("/api/v1/auth/token", data={"username": "alice", "password": "nope-nope"})
            assert wrong.status_code == 401
        blocked = client.post("/api/v1/auth/token", data={"username": "Alice", "password": PASSWORD})
        assert_envelope(blocked, 429, "login_throttled")
    with session_scope(url) as s:
        [entry] = list_entries(s, action="login.throttled")
    assert (entry.actor, entry.source, entry.details["refusals"]) == ("alice", "testclient", 1)


def _race(url: str, workers: int, attempt) -> list[BaseException]:
    """Run ``attempt(session)`` in ``workers`` threads released at the same instant."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            with session_scope(url) as s:
                attempt(s)
        except BaseException as exc:  # collected: the assertion names them
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.postgres
def test_first_failures_from_a_new_address_race_safely_on_postgres(pg_settings):
    url = pg_settings.resolved_ops_db_url  # a database of its own (pg_database fixture)
    migrate(url)
    workers = 8
    for n in range(5):  # several fresh addresses: each first failure is an insert race
        address = f"198.51.100.{n}"
        errors = _race(
            url, workers, lambda s, a=address: throttle.count_client_failure(s, a, datetime.now(UTC))
        )
        assert errors == []
        with session_scope(url) as s:
            assert s.get(LoginThrottle, address).failures == workers  # no count lost either


@pytest.mark.postgres
def test_concurrent_wrong_logins_from_a_new_address_are_401_not_500_on_postgres(pg_settings):
    url = pg_settings.resolved_ops_db_url
    migrate(url)

    def attempt(s) -> None:
        login(s, "nobody-here", "Summer2026!-guess", 30, client="192.0.2.44")

    errors = _race(url, 6, attempt)
    assert errors and all(isinstance(e, InvalidCredentials) for e in errors), errors
    with session_scope(url) as s:
        assert s.get(LoginThrottle, "192.0.2.44").failures == 6
        assert len(list_entries(s, action="login.failed")) == 6


def _paths(key: bytes):
    """Every library function that checks a password, each called for alice from ``client``."""
    from sciti.access import change_password, get_user

    def reauthenticate(*args, **kwargs):
        from sciti.access.login import reauthenticate

        return reauthenticate(*args, **kwargs)

    new = "violet-ferry-morning-42"
    return {
        "login": lambda s, pw, client: login(s, "alice", pw, 30, client=client, now=T0),
        "password change, first login": lambda s, pw, client: change_password(
            s, "alice", pw, new, client=client, mfa_key=key, now=T0
        ),
        "password change, logged in": lambda s, pw, client: change_password(
            s, "alice", pw, new, client=client, now=T0
        ),
        "re-authentication": lambda s, pw, client: reauthenticate(
            s, get_user(s, "alice"), pw, client=client, step="mfa.enrol", now=T0
        ),
    }


@pytest.mark.parametrize(
    "path",
    ["login", "password change, first login", "password change, logged in", "re-authentication"],
)
def test_every_password_check_counts_and_is_refused_while_blocked(sqlite_api_settings, monkeypatch, path):
    from sciti.access import load_instance_key
    from sciti.ops import User

    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 3)
    url, address = sqlite_api_settings.resolved_ops_db_url, "203.0.113.9"
    check = _paths(load_instance_key(sqlite_api_settings.home))[path]
    with session_scope(url) as s:
        create_user(s, "alice", ["viewer"], password=PASSWORD)
    for _ in range(3):
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            check(s, "Summer2026!-guess", address)
    with session_scope(url) as s:
        assert s.get(LoginThrottle, address).failures == 0  # blocked: the count restarts for the block
        assert s.scalars(select(User.failed_logins).where(User.username == "alice")).one() == 3
    # blocked: the right password gets the same 429 as a wrong one, through this path and the login
    for password in (PASSWORD, "Summer2026!-guess"):
        with session_scope(url) as s, pytest.raises(LoginThrottled):
            check(s, password, address)
    with session_scope(url) as s, pytest.raises(LoginThrottled):
        login(s, "alice", PASSWORD, 30, client=address, now=T0)


def test_a_success_leaves_the_address_count_and_clears_its_account(sqlite_api_settings, monkeypatch):
    from sciti.ops import User

    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 5)
    url, address = sqlite_api_settings.resolved_ops_db_url, "203.0.113.9"
    with session_scope(url) as s:
        for name in ("alice", "bob"):
            create_user(s, name, ["viewer"], password=PASSWORD)
    for name in ("alice", "bob", "bob", "nobody"):
        with session_scope(url) as s, pytest.raises(InvalidCredentials):
            login(s, name, "Summer2026!-guess", 30, client=address, now=T0)
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, client=address, now=T0).token
    with session_scope(url) as s:
        counts = {name: n for name, n in s.execute(select(User.username, User.failed_logins))}
        assert counts == {"alice": 0, "bob": 2}
        assert s.get(LoginThrottle, address).failures == 4
    with session_scope(url) as s, pytest.raises(InvalidCredentials):  # the fifth: blocked now
        login(s, "bob", "Summer2026!-guess", 30, client=address, now=T0)
    with session_scope(url) as s, pytest.raises(LoginThrottled):
        login(s, "alice", PASSWORD, 30, client=address, now=T0)
    # the failures age out with the window (15 minutes) and the block ends: nothing else clears them
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, client=address, now=T0 + timedelta(minutes=16)).token
