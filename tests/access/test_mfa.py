"""TOTP (RFC 6238 test vectors), enrolment, replay rejection, recovery codes, encryption at rest."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from sciti.access import (
    InvalidMfaCode,
    MfaError,
    MfaRequired,
    confirm,
    create_user,
    enrol,
    get_user,
    load_instance_key,
    login,
    mfa_enabled,
    totp_at,
    verify_second_factor,
)
from sciti.access.keys import key_path
from sciti.ops import User, migrate, session_scope
from sciti.ops.account_tables import MfaSecret, RecoveryCode

SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 Appendix B: time, then the 8-digit TOTP for SHA-1, SHA-256, SHA-512.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("unix_time", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b_vectors(unix_time, sha1, sha256, sha512):
    got = [totp_at(SEEDS[alg], unix_time, digits=8, algorithm=alg) for alg in ("sha1", "sha256", "sha512")]
    assert got == [sha1, sha256, sha512]


PASSWORD = "harbour-lantern-quietly-7"
T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def world(settings):
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return settings.resolved_ops_db_url, load_instance_key(settings.home), settings.home


def _enrolled(url, key, at=T0):
    with session_scope(url) as s:
        started = enrol(s, get_user(s, "alice"), key)
    otp = pyotp.parse_uri(started.uri)
    with session_scope(url) as s:
        codes = confirm(s, get_user(s, "alice"), key, otp.at(at), at)
    return otp, codes


def test_enrolment_is_confirmed_with_a_code_and_gives_recovery_codes(world):
    url, key, _ = world
    with session_scope(url) as s:
        started = enrol(s, get_user(s, "alice"), key)
        assert not mfa_enabled(s, get_user(s, "alice").id)  # not before confirmation
    assert started.uri.startswith("otpauth://totp/SCITI:alice?") and f"secret={started.secret}" in started.uri
    otp = pyotp.parse_uri(started.uri)
    with session_scope(url) as s, pytest.raises(InvalidMfaCode):
        confirm(s, get_user(s, "alice"), key, "000000" if otp.at(T0) != "000000" else "111111", T0)
    otp, codes = _enrolled(url, key)
    assert len(codes) == 10 and len(set(codes)) == 10
    with session_scope(url) as s:
        assert mfa_enabled(s, get_user(s, "alice").id)
        with pytest.raises(MfaError):  # a second enrolment over a live one is refused
            enrol(s, get_user(s, "alice"), key)


def test_secret_is_encrypted_at_rest_and_bound_to_the_account(world):
    url, key, home = world
    otp, codes = _enrolled(url, key)
    with session_scope(url) as s:
        row = s.scalars(select(MfaSecret)).one()
        stored = [r.code_hash for r in s.scalars(select(RecoveryCode))]
    assert otp.secret.encode() not in row.secret_encrypted
    assert not any(c.replace("-", "") in h for c in codes for h in stored)
    assert stat.S_IMODE(os.stat(key_path(home)).st_mode) == 0o600
    # the same ciphertext moved to another account does not decrypt
    with session_scope(url) as s:
        bob, _ = create_user(s, "bob", ["viewer"], password=PASSWORD)
        s.add(MfaSecret(user_id=bob.id, secret_encrypted=row.secret_encrypted, confirmed_at=T0, last_step=0))
    with session_scope(url) as s, pytest.raises(MfaError, match="does not decrypt"):
        verify_second_factor(s, get_user(s, "bob"), key, otp.at(T0 + timedelta(minutes=5)), T0)


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    load_instance_key(tmp_path)
    os.chmod(key_path(tmp_path), 0o644)
    with pytest.raises(MfaError, match="chmod 600"):
        load_instance_key(tmp_path)


def test_codes_are_accepted_once_within_their_window(world):
    url, key, _ = world
    otp, _ = _enrolled(url, key)  # the T0 step is burned by the confirmation
    later = T0 + timedelta(minutes=10)
    with session_scope(url) as s:
        alice = get_user(s, "alice")
        with pytest.raises(InvalidMfaCode):  # the confirmation code, replayed
            verify_second_factor(s, alice, key, otp.at(T0), T0 + timedelta(seconds=5))
        assert verify_second_factor(s, alice, key, otp.at(later), later) == "totp"
        with pytest.raises(InvalidMfaCode):  # same code, same window: replay
            verify_second_factor(s, alice, key, otp.at(later), later + timedelta(seconds=10))
        # one step of clock drift either way is accepted; two are not
        drift = later + timedelta(minutes=5)
        assert verify_second_factor(s, alice, key, otp.at(drift - timedelta(seconds=30)), drift) == "totp"
        with pytest.raises(InvalidMfaCode):
            verify_second_factor(s, alice, key, otp.at(drift + timedelta(seconds=60)), drift)


def test_recovery_codes_work_once_each(world):
    url, key, _ = world
    _, codes = _enrolled(url, key)
    with session_scope(url) as s:
        alice = get_user(s, "alice")
        assert verify_second_factor(s, alice, key, codes[0].upper(), T0) == "recovery"
        with pytest.raises(InvalidMfaCode):
            verify_second_factor(s, alice, key, codes[0], T0)
        assert verify_second_factor(s, alice, key, codes[1], T0) == "recovery"


def test_login_requires_the_second_factor_once_enrolled(world):
    url, key, _ = world
    otp, codes = _enrolled(url, key)
    now = T0 + timedelta(hours=1)
    with session_scope(url) as s, pytest.raises(MfaRequired):
        login(s, "alice", PASSWORD, 30, mfa_key=key, now=now)
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, second_factor=otp.at(now), mfa_key=key, now=now).token
    with session_scope(url) as s:
        assert login(s, "alice", PASSWORD, 30, second_factor=codes[3], mfa_key=key, now=now).token


def test_wrong_codes_count_towards_the_lockout(world):
    from sciti.access import LOCK_AFTER_FAILURES, InvalidCredentials

    url, key, _ = world
    otp, _ = _enrolled(url, key)
    now = T0 + timedelta(hours=1)
    wrong = "123456" if otp.at(now) != "123456" else "654321"
    for _ in range(LOCK_AFTER_FAILURES):
        with session_scope(url) as s, pytest.raises(InvalidMfaCode):
            login(s, "alice", PASSWORD, 30, second_factor=wrong, mfa_key=key, now=now)
    # the right password and code are now refused: the account is locked
    with session_scope(url) as s, pytest.raises(InvalidCredentials):
        login(s, "alice", PASSWORD, 30, second_factor=otp.at(now), mfa_key=key, now=now)
    with session_scope(url) as s:
        assert s.scalars(select(User).where(User.username == "alice")).one().locked_until is not None
