"""Logging in: password, second factor, lockout, per-address throttling, password change,
re-authentication.

Every check of a password or a one-time code goes through here and is counted the same way
(decision 0082): a blocked address is refused before anything is checked (429), a wrong answer
counts against the account's lockout and against the caller's address, and is audited as
``login.failed`` (with ``step`` when it was not a login). A success clears only the account's own
count; the address's failures age out with their window (``throttle``).

Functions take an open SQLAlchemy ``Session``. Some commit on their own before raising, on
purpose: a failed login must be counted (and audited) even though the caller's transaction fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sciti.access import mfa
from sciti.access.accounts import (
    LOCK_AFTER_FAILURES,
    LOCK_MINUTES,
    IssuedToken,
    account_usable,
    as_utc,
    find_user,
    issue_token,
    now_utc,
    revoke_user_tokens,
)
from sciti.access.audit import audit
from sciti.access.errors import (
    AccountError,
    InvalidCredentials,
    InvalidMfaCode,
    MfaRequired,
    PasswordChangeRequired,
    WeakPassword,
)
from sciti.access.passwords import burn_verify, check_password, hash_password, needs_rehash, verify_password
from sciti.access.throttle import check_client, count_client_failure
from sciti.ops import User

T = TypeVar("T")
LOGIN = "login"


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    now: datetime | None = None,
    allow_password_change: bool = False,
    client: str | None = None,
    step: str = LOGIN,
) -> User:
    """Check a username and password, counting failures and locking the account after too many.

    Every refusal raises the same InvalidCredentials, so a caller cannot tell an unknown user from
    a wrong password or a locked, disabled or expired account. A correct password on an account
    that must change it raises PasswordChangeRequired unless ``allow_password_change`` (the
    change-password path). Commits the session before raising, so failure counts (and their
    audit entries) survive the caller's rollback. ``client`` is the caller's address, throttled
    (``None`` only for callers that are not on the network); ``step`` names the check in the trail.
    """
    now = now or now_utc()
    user = _check_password(session, username, password, now, client, step)
    _password_ok(session, user, password)
    if user.must_change_password and not allow_password_change:
        session.commit()
        raise PasswordChangeRequired(user.username)
    return user


def _check_password(
    session: Session, username: str, password: str, now: datetime, client: str | None, step: str
) -> User:
    """The account if the password is right; counts and audits a failure otherwise (no reset).

    A blocked address is refused first, whatever the password: the answer must not tell a right
    password from a wrong one while the address is blocked.
    """
    if client:
        check_client(session, client, now, username)
    user = find_user(session, username)
    locked_until = as_utc(user.locked_until) if user else None
    if (
        user is None
        or not account_usable(user, now)
        or user.password_hash is None
        or (locked_until and locked_until > now)
    ):
        burn_verify(password)  # same cost as a real check: timing reveals nothing either
        _refuse(session, username, client, now, "unknown, locked, disabled or expired account", step)
    if not verify_password(user.password_hash, password):
        _count_failure(session, user.id, now, client)
        _refuse(session, user.username, client, now, "wrong password", step)
    return user


def _password_ok(session: Session, user: User, password: str | None) -> None:
    """Clear the account's failure count after a complete authentication; upgrade an old hash.

    The address's count is left alone: one valid account must not wipe the failures an address
    made against others (decision 0082). They age out with the throttle's window.
    """
    user.failed_logins = 0
    user.locked_until = None
    if password is not None and user.password_hash is not None and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)


def _refuse(
    session: Session,
    username: str,
    client: str | None,
    now: datetime,
    why: str,
    step: str,
    exc: Exception | None = None,
) -> NoReturn:
    if client:
        count_client_failure(session, client, now)
    details = {"reason": why} if step == LOGIN else {"reason": why, "step": step}
    audit(
        session,
        actor=username.strip().lower()[:150],
        action="login.failed",
        source=client,
        outcome="refused",
        details=details,
    )
    session.commit()
    raise exc or InvalidCredentials()


def verify_login(
    session: Session,
    username: str,
    password: str,
    *,
    second_factor: str | None = None,
    mfa_key: bytes | None = None,
    client: str | None = None,
    now: datetime | None = None,
    allow_password_change: bool = False,
    step: str = LOGIN,
) -> User:
    """A complete login check: password, then the second factor if the account has MFA.

    The failure count is cleared only once every factor has passed, so a stolen password does
    not let anyone guess one-time codes without the lockout counting.
    """
    now = now or now_utc()
    user = _check_password(session, username, password, now, client, step)
    method = "password"
    if mfa.mfa_enabled(session, user.id):
        if not second_factor:
            session.commit()
            raise MfaRequired()
        if mfa_key is None:
            raise AccountError("the instance key is needed to check one-time codes", remedy="report this")
        try:
            method = "password+" + mfa.verify_second_factor(session, user, mfa_key, second_factor, now)
        except InvalidMfaCode as exc:
            _count_failure(session, user.id, now, client)
            _refuse(session, user.username, client, now, "wrong one-time code", step, exc)
    _password_ok(session, user, password)
    if allow_password_change:
        return user
    if user.must_change_password:
        session.commit()
        raise PasswordChangeRequired(user.username)
    user.last_login_at = now
    audit(session, actor=user.username, action="login", source=client, details={"method": method})
    return user


def _count_failure(session: Session, user_id: int, now: datetime, client: str | None = None) -> None:
    # One atomic UPDATE: concurrent wrong guesses each count, none is lost to a read-modify-write.
    failures = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    ).scalar_one()
    if failures >= LOCK_AFTER_FAILURES:
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(failed_logins=0, locked_until=now + timedelta(minutes=LOCK_MINUTES))
        )
        name = session.scalar(select(User.username).where(User.id == user_id)) or ""
        audit(
            session,
            actor=name,
            action="account.locked",
            target=f"user:{name}",
            source=client,
            details={"minutes": LOCK_MINUTES, "failures": int(failures)},
        )
    session.expire_all()


def change_password(
    session: Session,
    username: str,
    current_password: str,
    new_password: str,
    *,
    client: str | None,
    second_factor: str | None = None,
    mfa_key: bytes | None = None,
    now: datetime | None = None,
) -> User:
    """A user sets their own password (also the way out of a one-time password). Revokes tokens.

    With ``mfa_key`` (a caller who did not log in first), an account with MFA must also give its
    one-time code: the current password alone does not let anyone lock its owner out.
    The current password is checked like a login, throttled per ``client`` (the caller's address,
    required so that no network path forgets it): otherwise the answer to a right password
    (``weak_password``) against a wrong one (``invalid_credentials``) is a guessing oracle.
    """
    step = "password.change"
    if mfa_key is not None:
        user = verify_login(
            session,
            username,
            current_password,
            second_factor=second_factor,
            mfa_key=mfa_key,
            client=client,
            now=now,
            allow_password_change=True,
            step=step,
        )
    else:
        user = authenticate(
            session, username, current_password, now=now, allow_password_change=True, client=client, step=step
        )
    if new_password == current_password:
        raise WeakPassword(
            "password refused: the new password is the same as the current one",
            remedy="choose a different passphrase",
        )
    check_password(new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    revoke_user_tokens(session, user.id, now=now)
    return user


def reauthenticate(
    session: Session,
    user: User,
    password: str | None,
    *,
    client: str | None,
    step: str,
    second_factor: Callable[[], T] | None = None,
    now: datetime | None = None,
) -> T | None:
    """A logged-in user proves again who they are before a sensitive change (their MFA).

    Checked like a login: a blocked address is refused first, a wrong password (or a one-time code
    refused by ``second_factor``, which raises InvalidMfaCode) counts against the account's lockout
    and the address's throttle and is audited as ``login.failed`` with ``step``. The account's
    count is cleared only once every proof has passed. An account without a password (a service
    or single sign-on account) has none to give. Returns what ``second_factor`` returned.
    """
    now = now or now_utc()
    if user.password_hash is not None:
        _check_password(session, user.username, password or "", now, client, step)
    else:
        _check_usable(session, user, now, client, step)
    result = _counted_code(session, user, client, now, step, second_factor) if second_factor else None
    _password_ok(session, user, password)
    return result


def check_one_time_code(
    session: Session,
    user: User,
    check: Callable[[], T],
    *,
    client: str | None,
    step: str,
    now: datetime | None = None,
) -> T:
    """Run ``check`` (a one-time code check that raises InvalidMfaCode), counted like a login:
    refused while the address is blocked or the account locked, a wrong code counted."""
    now = now or now_utc()
    _check_usable(session, user, now, client, step)
    result = _counted_code(session, user, client, now, step, check)
    _password_ok(session, user, None)
    return result


def _check_usable(session: Session, user: User, now: datetime, client: str | None, step: str) -> None:
    """The checks of ``_check_password`` that come before the password: address, account state."""
    if client:
        check_client(session, client, now, user.username)
    locked_until = as_utc(user.locked_until)
    if not account_usable(user, now) or (locked_until and locked_until > now):
        _refuse(session, user.username, client, now, "locked, disabled or expired account", step)


def _counted_code(
    session: Session, user: User, client: str | None, now: datetime, step: str, check: Callable[[], T]
) -> T:
    try:
        return check()
    except InvalidMfaCode as exc:
        _count_failure(session, user.id, now, client)
        _refuse(session, user.username, client, now, "wrong one-time code", step, exc)


def login(
    session: Session,
    username: str,
    password: str,
    ttl_minutes: int,
    *,
    second_factor: str | None = None,
    mfa_key: bytes | None = None,
    client: str | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Password login (plus the one-time code when the account has MFA) for a bearer token."""
    now = now or now_utc()
    user = verify_login(
        session, username, password, second_factor=second_factor, mfa_key=mfa_key, client=client, now=now
    )
    return issue_token(session, user, ttl_minutes, label="login", now=now)
