"""Every check of a password or one-time code counts against the account's lockout and the
address's throttle, and is refused while the address is blocked (decision 0082); a success
clears only that account's own count. On SQLite and PostgreSQL; the test client's address is
"testclient"."""

from __future__ import annotations

import time

import pyotp
import pytest

from sciti.access import LOCK_AFTER_FAILURES, create_user, list_entries, throttle
from sciti.ops import User, session_scope
from sciti.ops.account_tables import LoginThrottle
from tests.api.conftest import assert_envelope, bearer

PASSWORD = "harbour-lantern-quietly-7"
WRONG = "Summer2026!-guess"
LIMIT = 3  # the real limit is 50; the same code path


@pytest.fixture
def people(api_settings, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", LIMIT)
    with session_scope(api_settings.resolved_ops_db_url) as s:
        for name in ("alice", "bob"):
            create_user(s, name, ["analyst"], password=PASSWORD)
    return api_settings.resolved_ops_db_url


def _token(client, **extra) -> str:
    answer = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _block(client) -> None:
    for _ in range(LIMIT):
        wrong = client.post("/api/v1/auth/token", json={"username": "bob", "password": WRONG})
        assert_envelope(wrong, 401, "invalid_credentials")


def _change(client, current: str, new: str, token: str | None):
    if token:
        return client.post(
            "/api/v1/auth/password",
            headers=bearer(token),
            json={"current_password": current, "new_password": new},
        )
    body = {"username": "alice", "current_password": current, "new_password": new}
    return client.post("/api/v1/auth/password", json=body)


@pytest.mark.parametrize("logged_in", [False, True], ids=["first-login", "with-token"])
def test_a_blocked_address_gets_no_answer_from_the_password_change(client, people, logged_in):
    """The review's oracle: while blocked, a right current password answered weak_password and a
    wrong one invalid_credentials. Both are 429 now, and the password is unchanged."""
    token = _token(client) if logged_in else None
    _block(client)
    assert_envelope(_change(client, PASSWORD, "password", token), 429, "login_throttled")
    assert_envelope(_change(client, WRONG, "password", token), 429, "login_throttled")
    assert_envelope(_change(client, PASSWORD, "violet-ferry-morning-42", token), 429, "login_throttled")
    with session_scope(people) as s:
        assert [e.actor for e in list_entries(s, action="password.change")] == []


@pytest.mark.parametrize("logged_in", [False, True], ids=["first-login", "with-token"])
def test_wrong_current_passwords_count_against_the_address_and_the_account(client, people, logged_in):
    token = _token(client) if logged_in else None
    for _ in range(LIMIT):
        assert_envelope(_change(client, WRONG, "violet-ferry-morning-42", token), 401, "invalid_credentials")
    # the address is blocked for the login too, even with the right password
    login = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert_envelope(login, 429, "login_throttled")
    with session_scope(people) as s:
        assert s.query(User).filter_by(username="alice").one().failed_logins == LIMIT
        failed = list_entries(s, action="login.failed")
    assert [(e.actor, e.source, e.details["step"]) for e in failed] == [
        ("alice", "testclient", "password.change")
    ] * LIMIT


def test_a_success_does_not_wipe_the_failures_of_other_accounts(client, people):
    """Holding one valid account must not reset the address's count every LIMIT - 1 guesses."""
    for _ in range(LIMIT - 1):
        assert_envelope(
            client.post("/api/v1/auth/token", json={"username": "bob", "password": WRONG}),
            401,
            "invalid_credentials",
        )
    _token(client)  # alice, with her right password, from the same address
    with session_scope(people) as s:
        assert s.get(LoginThrottle, "testclient").failures == LIMIT - 1  # still counted
        bob = s.query(User).filter_by(username="bob").one()
        assert bob.failed_logins == LIMIT - 1  # bob's count is bob's: alice's login leaves it
    assert_envelope(
        client.post("/api/v1/auth/token", json={"username": "bob", "password": WRONG}),
        401,
        "invalid_credentials",
    )
    assert_envelope(
        client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}),
        429,
        "login_throttled",
    )


def test_a_success_clears_its_own_account(client, people):
    for _ in range(LIMIT - 1):
        client.post("/api/v1/auth/token", json={"username": "alice", "password": WRONG})
    _token(client)
    with session_scope(people) as s:
        assert s.query(User).filter_by(username="alice").one().failed_logins == 0


def test_re_authentication_before_an_mfa_change_counts_like_a_login(client, people):
    token = _token(client)
    for _ in range(LIMIT):
        enrol = client.post("/api/v1/mfa/enrol", headers=bearer(token), json={"password": WRONG})
        assert_envelope(enrol, 401, "invalid_credentials")
    # blocked: the right password does not get through either, at any door
    right = client.post("/api/v1/mfa/enrol", headers=bearer(token), json={"password": PASSWORD})
    assert_envelope(right, 429, "login_throttled")
    assert_envelope(
        client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}),
        429,
        "login_throttled",
    )
    with session_scope(people) as s:
        steps = [e.details.get("step") for e in list_entries(s, action="login.failed")]
    assert steps == ["mfa.enrol"] * LIMIT


def _fresh_code(otp: pyotp.TOTP) -> str:
    if time.time() % 30 > 27:  # away from a step boundary
        time.sleep(3.5)
    return otp.now()


def test_guessing_one_time_codes_with_a_stolen_token_locks_the_account(client, people, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT_MAX_FAILURES", 50)  # the account's lockout is what stops this
    token = _token(client)
    started = client.post("/api/v1/mfa/enrol", headers=bearer(token), json={"password": PASSWORD}).json()
    otp = pyotp.parse_uri(started["otpauth_uri"])
    confirm = client.post(
        "/api/v1/mfa/confirm", headers=bearer(token), json={"code": otp.at(time.time() - 30)}
    )
    assert confirm.status_code == 200, confirm.text
    for _ in range(LOCK_AFTER_FAILURES):
        guess = client.post("/api/v1/mfa/recovery-codes", headers=bearer(token), json={"code": "000000"})
        assert_envelope(guess, 401, "invalid_mfa_code")
    # locked: even the right code is refused now, and the recovery codes are not replaced
    right = client.post("/api/v1/mfa/recovery-codes", headers=bearer(token), json={"code": _fresh_code(otp)})
    assert_envelope(right, 401, "invalid_credentials")
    assert client.get("/api/v1/mfa", headers=bearer(token)).json()["recovery_codes_left"] == 10
    with session_scope(people) as s:
        [locked] = list_entries(s, action="account.locked")
        steps = {e.details.get("step") for e in list_entries(s, action="login.failed")}
    assert locked.source == "testclient" and steps == {"mfa.recovery_codes"}


def test_turning_mfa_off_needs_both_proofs_and_counts_each(client, people):
    token = _token(client)
    started = client.post("/api/v1/mfa/enrol", headers=bearer(token), json={"password": PASSWORD}).json()
    otp = pyotp.parse_uri(started["otpauth_uri"])
    client.post("/api/v1/mfa/confirm", headers=bearer(token), json={"code": otp.at(time.time() - 30)})
    wrong_code = client.post(
        "/api/v1/mfa/disable", headers=bearer(token), json={"password": PASSWORD, "code": "000000"}
    )
    assert_envelope(wrong_code, 401, "invalid_mfa_code")
    wrong_password = client.post(
        "/api/v1/mfa/disable", headers=bearer(token), json={"password": WRONG, "code": _fresh_code(otp)}
    )
    assert_envelope(wrong_password, 401, "invalid_credentials")
    with session_scope(people) as s:
        # a right password does not clear the count while the code is wrong
        assert s.query(User).filter_by(username="alice").one().failed_logins == 2
        assert s.get(LoginThrottle, "testclient").failures == 2
    off = client.post(
        "/api/v1/mfa/disable", headers=bearer(token), json={"password": PASSWORD, "code": _fresh_code(otp)}
    )
    assert off.status_code == 200, off.text
    with session_scope(people) as s:
        assert s.query(User).filter_by(username="alice").one().failed_logins == 0
