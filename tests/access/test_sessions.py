"""Browser sessions at the function level: expiry, idle timeout, CSRF, account state, logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sciti.access import (
    CsrfFailed,
    InvalidToken,
    create_user,
    csrf_token,
    end_session,
    get_user,
    login_session,
    resolve_session,
    set_disabled,
)
from sciti.access.sessions import IDLE_MINUTES
from sciti.ops import session_scope

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def started(sqlite_api_settings):
    url = sqlite_api_settings.resolved_ops_db_url
    with session_scope(url) as s:
        user, _ = create_user(s, "alice", ["analyst"], service=True)
        new = login_session(s, user, 120, client="192.0.2.1", now=T0)
    return url, new


def test_a_session_resolves_to_its_user_and_csrf_token(started):
    url, new = started
    with session_scope(url) as s:
        principal = resolve_session(s, new.session_id, now=T0 + timedelta(minutes=5))
        assert principal.username == "alice" and principal.session_id is not None
        assert csrf_token(s, new.session_id, now=T0) == new.csrf_token
        assert (
            resolve_session(s, new.session_id, method="POST", csrf=new.csrf_token, now=T0).username == "alice"
        )
        with pytest.raises(CsrfFailed):
            resolve_session(s, new.session_id, method="DELETE", csrf=None, now=T0)
        with pytest.raises(CsrfFailed):
            resolve_session(s, new.session_id, method="PUT", csrf=new.csrf_token[:-1] + "x", now=T0)


ENDED = [
    ("absolute expiry", lambda s, sid: None, T0 + timedelta(minutes=121)),
    ("idle", lambda s, sid: None, T0 + timedelta(minutes=IDLE_MINUTES + 1)),
    ("logout", lambda s, sid: end_session(s, sid), T0 + timedelta(minutes=1)),
    ("disabled", lambda s, sid: set_disabled(s, "alice"), T0 + timedelta(minutes=1)),
    (
        "expired account",
        lambda s, sid: setattr(get_user(s, "alice"), "expires_at", T0),
        T0 + timedelta(minutes=1),
    ),
]


@pytest.mark.parametrize(("why", "act", "at"), ENDED, ids=[e[0] for e in ENDED])
def test_sessions_end(started, why, act, at):
    url, new = started
    with session_scope(url) as s:
        act(s, new.session_id)
    with session_scope(url) as s, pytest.raises(InvalidToken):
        resolve_session(s, new.session_id, now=at)


def test_use_keeps_a_session_alive_until_its_absolute_expiry(started):
    url, new = started
    for minutes in range(0, 120, IDLE_MINUTES - 5):
        with session_scope(url) as s:
            resolve_session(s, new.session_id, now=T0 + timedelta(minutes=minutes))
    with session_scope(url) as s, pytest.raises(InvalidToken):
        resolve_session(s, new.session_id, now=T0 + timedelta(minutes=121))
