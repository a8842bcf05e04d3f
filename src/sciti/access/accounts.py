"""Local accounts and bearer tokens, on the operational database (logging in is ``login.py``).

Functions take an open SQLAlchemy ``Session`` (from ``sciti.ops.session_scope``) so the API, the
CLI and later features compose them in one transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sciti.access.errors import (
    AccountError,
    InvalidToken,
)
from sciti.access.passwords import (
    check_password,
    hash_password,
    one_time_password,
)
from sciti.access.roles import permissions_of, validate_roles
from sciti.ops import ApiToken, User
from sciti.ops.account_tables import BrowserSession

LOCK_AFTER_FAILURES = 10
LOCK_MINUTES = 15
# A fixed prefix lets secret scanners and our log redaction recognise a leaked token.
TOKEN_PREFIX = "sciti_"  # noqa: S105 (not a secret)
_TOKEN_SHAPE = re.compile(r"^sciti_[A-Za-z0-9_-]{43}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,149}$")
_TOUCH_EVERY = timedelta(seconds=60)  # write last_used_at at most this often per token
# How long a resolved bearer token is trusted without asking the database again. A revocation made
# in this process clears the cache at once; one made elsewhere (the CLI, another worker) takes
# effect within this many seconds.
TOKEN_CACHE_SECONDS = 5.0


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
    session_id: int | None = None  # set when the caller came with the browser session cookie

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


OFFICE_MAX_LENGTH = 32  # the operational database's column (users.office_code, risk queue offices)


def normalise_office(office_code: str | None) -> str | None:
    """An account's office code as stored: trimmed; None: the account sees every office.

    A blank or over-long code is refused, never stored: an empty office binds an account to
    nothing, and the row rules would then show it every office."""
    if office_code is None:
        return None
    code = office_code.strip()
    if not code or len(code) > OFFICE_MAX_LENGTH or not code.isprintable():
        raise AccountError(
            f"invalid office code {office_code!r}",
            remedy=f"give the office's code (1-{OFFICE_MAX_LENGTH} characters, e.g. HKIA), "
            "or no office for an account that sees every office",
        )
    return code


def account_usable(user: User, now: datetime) -> bool:
    """Not disabled and not past its account expiry date."""
    expires = as_utc(user.expires_at)
    return not user.disabled and (expires is None or expires > now)


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
    office_code = normalise_office(office_code)
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
    TOKEN_CACHE.clear()
    return revoke_user_tokens(session, user.id) if disabled else 0


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


def principal_of(
    user: User, token: ApiToken | None = None, *, session_row: BrowserSession | None = None
) -> Principal:
    roles = tuple(user.roles or ())
    expires = token.expires_at if token else (session_row.expires_at if session_row else None)
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name or "",
        roles=roles,
        office_code=user.office_code,
        permissions=permissions_of(roles),
        token_id=token.id if token else None,
        token_expires_at=as_utc(expires),
        session_id=session_row.id if session_row else None,
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
    if tok.revoked_at is not None or not account_usable(user, now) or expires is None or expires <= now:
        raise InvalidToken()
    last = as_utc(tok.last_used_at)
    if last is None or now - last > _TOUCH_EVERY:
        tok.last_used_at = now
    return principal_of(user, tok)


class TokenCache:
    """Principals of recently resolved bearer tokens, for ``TOKEN_CACHE_SECONDS``, per database.

    Keyed by the token's SHA-256 (the token itself is not kept). An entry is dropped when its
    time is up or the token expires, whichever comes first.
    """

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS, max_entries: int = 10_000):
        self.seconds = seconds
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, Principal]] = {}

    def get(self, db_url: str, token: str) -> Principal | None:
        key = (db_url, token_hash(token))
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        until, principal = entry
        expires = principal.token_expires_at
        if time.monotonic() >= until or (expires is not None and expires <= now_utc()):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return principal

    def put(self, db_url: str, token: str, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # many distinct tokens at once: start again rather than grow
            self._entries[(db_url, token_hash(token))] = (time.monotonic() + self.seconds, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


TOKEN_CACHE = TokenCache()


def revoke_token(session: Session, token_id: int, *, now: datetime | None = None) -> bool:
    """Revoke one token; False if it was already revoked or does not exist."""
    TOKEN_CACHE.clear()
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or now_utc())
    )
    return bool(getattr(result, "rowcount", 0))  # a CursorResult for UPDATE


def revoke_user_tokens(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Revoke every live token and end every browser session of a user; returns how many tokens."""
    TOKEN_CACHE.clear()
    now = now or now_utc()
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(BrowserSession)
        .where(BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def active_token_count(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    now = now or now_utc()
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)))
    return sum(1 for t in rows if (as_utc(t.expires_at) or now) > now)
