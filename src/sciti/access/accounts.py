"""Local accounts and bearer tokens, on the operational database.

Functions take an open SQLAlchemy ``Session`` (from ``sciti.ops.session_scope``) so the API, the
CLI and later features compose them in one transaction. Two of them commit on their own before
raising, on purpose: a failed login must be counted even though the caller's transaction fails.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sciti.access.errors import (
    AccountError,
    InvalidCredentials,
    InvalidToken,
    PasswordChangeRequired,
    WeakPassword,
)
from sciti.access.passwords import (
    burn_verify,
    check_password,
    hash_password,
    needs_rehash,
    one_time_password,
    verify_password,
)
from sciti.access.roles import permissions_of, validate_roles
from sciti.ops import ApiToken, User

LOCK_AFTER_FAILURES = 10
LOCK_MINUTES = 15
# A fixed prefix lets secret scanners and our log redaction recognise a leaked token.
TOKEN_PREFIX = "sciti_"  # noqa: S105 (not a secret)
_TOKEN_SHAPE = re.compile(r"^sciti_[A-Za-z0-9_-]{43}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,149}$")
_TOUCH_EVERY = timedelta(seconds=60)  # write last_used_at at most this often per token


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account behind a valid token, with its roles and permissions."""

    user_id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    office_code: str | None
    permissions: frozenset[str]
    token_id: int | None = None
    token_expires_at: datetime | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class IssuedToken:
    """A new bearer token. ``token`` exists only here: the database keeps its SHA-256."""

    token: str
    token_id: int
    username: str
    expires_at: datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- accounts -------------------------------------------------------------------------------


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise AccountError(
            f"invalid username {username!r}",
            remedy="use 2-150 characters: letters, digits and . _ @ -, starting with a letter or digit",
        )
    return name


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise AccountError(f"no user {username!r}", remedy="list accounts with `sciti user list`")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(
    session: Session,
    username: str,
    roles: Iterable[str],
    *,
    office_code: str | None = None,
    display_name: str = "",
    password: str | None = None,
    service: bool = False,
) -> tuple[User, str | None]:
    """Create an account. Returns the user and, unless a password was given, a one-time password.

    With ``service=True`` the account has no password at all (it can only hold tokens an
    administrator issues, e.g. a Prometheus scraper); otherwise, without ``password``, a random
    one-time password is generated and must be changed at first login.
    """
    name = normalise_username(username)
    role_list = validate_roles(roles)
    if find_user(session, name) is not None:
        raise AccountError(
            f"user {name!r} already exists", remedy="choose another name or use `sciti user passwd`"
        )
    one_time: str | None = None
    if service:
        pw_hash, must_change = None, False
    elif password is not None:
        check_password(password, username=name)
        pw_hash, must_change = hash_password(password), False
    else:
        one_time = one_time_password()
        pw_hash, must_change = hash_password(one_time), True
    user = User(
        username=name,
        display_name=display_name,
        password_hash=pw_hash,
        roles=role_list,
        office_code=office_code,
        must_change_password=must_change,
        disabled=False,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user, one_time


def reset_password(session: Session, username: str) -> str:
    """Administrator reset: a new one-time password (returned once), forced change, tokens revoked."""
    user = get_user(session, username)
    one_time = one_time_password()
    user.password_hash = hash_password(one_time)
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    revoke_user_tokens(session, user.id)
    return one_time


def set_disabled(session: Session, username: str, disabled: bool = True) -> int:
    """Disable (or enable) an account. Disabling revokes its tokens; returns how many."""
    user = get_user(session, username)
    user.disabled = disabled
    return revoke_user_tokens(session, user.id) if disabled else 0


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    now: datetime | None = None,
    allow_password_change: bool = False,
) -> User:
    """Check a username and password, counting failures and locking the account after too many.

    Every refusal raises the same InvalidCredentials, so a caller cannot tell an unknown user from
    a wrong password or a locked account. A correct password on an account that must change it
    raises PasswordChangeRequired unless ``allow_password_change`` (the change-password path).
    Commits the session before raising, so failure counts survive the caller's rollback.
    """
    now = now or now_utc()
    user = find_user(session, username)
    locked_until = as_utc(user.locked_until) if user else None
    if user is None or user.disabled or user.password_hash is None or (locked_until and locked_until > now):
        burn_verify(password)  # same cost as a real check: timing reveals nothing either
        raise InvalidCredentials()
    if not verify_password(user.password_hash, password):
        _count_failure(session, user.id, now)
        session.commit()
        raise InvalidCredentials()
    user.failed_logins = 0
    user.locked_until = None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if user.must_change_password and not allow_password_change:
        session.commit()
        raise PasswordChangeRequired(user.username)
    return user


def _count_failure(session: Session, user_id: int, now: datetime) -> None:
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
    session.expire_all()


def change_password(
    session: Session, username: str, current_password: str, new_password: str, *, now: datetime | None = None
) -> User:
    """A user sets their own password (also the way out of a one-time password). Revokes tokens."""
    user = authenticate(session, username, current_password, now=now, allow_password_change=True)
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


# --- tokens ---------------------------------------------------------------------------------


def issue_token(
    session: Session, user: User, ttl_minutes: int, *, label: str = "", now: datetime | None = None
) -> IssuedToken:
    """Create a bearer token for ``user``; only its SHA-256 is stored."""
    if ttl_minutes <= 0:
        raise AccountError("a token lifetime must be positive", remedy="give --ttl as e.g. 30m, 8h or 90d")
    now = now or now_utc()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=token_hash(token),
        user_id=user.id,
        label=label[:200],
        created_at=now,
        expires_at=now + timedelta(minutes=ttl_minutes),
    )
    session.add(row)
    session.flush()
    return IssuedToken(token=token, token_id=row.id, username=user.username, expires_at=row.expires_at)


def login(
    session: Session, username: str, password: str, ttl_minutes: int, *, now: datetime | None = None
) -> IssuedToken:
    """Password login: authenticate, then issue a token labelled as a login."""
    now = now or now_utc()
    user = authenticate(session, username, password, now=now)
    user.last_login_at = now
    return issue_token(session, user, ttl_minutes, label="login", now=now)


def principal_of(user: User, token: ApiToken | None = None) -> Principal:
    roles = tuple(user.roles or ())
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name or "",
        roles=roles,
        office_code=user.office_code,
        permissions=permissions_of(roles),
        token_id=token.id if token else None,
        token_expires_at=as_utc(token.expires_at) if token else None,
    )


def resolve_token(session: Session, token: str, *, now: datetime | None = None) -> Principal:
    """The principal behind a bearer token, or InvalidToken (unknown, expired, revoked, disabled)."""
    if not _TOKEN_SHAPE.match(token or ""):
        raise InvalidToken()
    now = now or now_utc()
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(token))
    ).first()
    if row is None:
        raise InvalidToken()
    tok, user = row
    expires = as_utc(tok.expires_at)
    if tok.revoked_at is not None or user.disabled or expires is None or expires <= now:
        raise InvalidToken()
    last = as_utc(tok.last_used_at)
    if last is None or now - last > _TOUCH_EVERY:
        tok.last_used_at = now
    return principal_of(user, tok)


def revoke_token(session: Session, token_id: int, *, now: datetime | None = None) -> bool:
    """Revoke one token; False if it was already revoked or does not exist."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or now_utc())
    )
    return bool(getattr(result, "rowcount", 0))  # a CursorResult for UPDATE


def revoke_user_tokens(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Revoke every live token of a user; returns how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or now_utc())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def active_token_count(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    now = now or now_utc()
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)))
    return sum(1 for t in rows if (as_utc(t.expires_at) or now) > now)
