"""Per-address throttling of failed logins (password spraying) beside the per-account lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sciti.access import InvalidCredentials, LoginThrottled, create_user, login, throttle
from sciti.ops import session_scope

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
