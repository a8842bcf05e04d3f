"""Browser sessions for the web app: server-side rows, an opaque cookie, a synchroniser CSRF token.

The cookie carries only a random id (256 bits); the table keeps its SHA-256, the user, the CSRF
token, and the absolute and idle expiry. A login always creates a new id and ends the session the
browser came with (no session fixation). Requests that change state with the cookie must echo the
session's CSRF token in a header or form field: a cross-site page cannot read it (SameSite=Strict
already keeps the cookie off cross-site requests; the token is the second, independent defence).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sciti.access.accounts import Principal, account_usable, as_utc, now_utc, principal_of, token_hash
from sciti.access.errors import CsrfFailed, InvalidToken
from sciti.ops import User
from sciti.ops.account_tables import BrowserSession

SESSION_COOKIE = "sciti_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
IDLE_MINUTES = 60  # a session unused this long ends, whatever its absolute lifetime
_TOUCH_EVERY = timedelta(seconds=60)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class NewSession:
    """A session just created: ``session_id`` goes in the cookie, ``csrf_token`` to the page."""

    session_id: str
    csrf_token: str
    expires_at: datetime
    username: str


def login_session(
    session: Session,
    user: User,
    ttl_minutes: int,
    *,
    method: str = "password",
    client: str = "",
    replaces: str | None = None,
    now: datetime | None = None,
) -> NewSession:
    """Start a session for an authenticated user, ending ``replaces`` (the cookie the browser sent).

    The caller has authenticated ``user`` already (password + MFA, or SSO).
    """
    now = now or now_utc()
    if replaces:
        end_session(session, replaces, now=now)
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    row = BrowserSession(
        session_hash=token_hash(sid),
        user_id=user.id,
        csrf_token=csrf,
        method=method,
        client=client[:100],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=ttl_minutes),
    )
    session.add(row)
    user.last_login_at = now
    session.flush()
    return NewSession(session_id=sid, csrf_token=csrf, expires_at=row.expires_at, username=user.username)


def _live(session: Session, session_id: str, now: datetime) -> tuple[BrowserSession, User]:
    if not session_id or len(session_id) > 100:
        raise InvalidToken("the session is unknown, expired or ended", remedy="log in again")
    found = session.execute(
        select(BrowserSession, User)
        .join(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.session_hash == token_hash(session_id))
    ).first()
    if found is None:
        raise InvalidToken("the session is unknown, expired or ended", remedy="log in again")
    row, user = found
    expires, seen = as_utc(row.expires_at), as_utc(row.last_seen_at)
    if (
        row.revoked_at is not None
        or not account_usable(user, now)
        or expires is None
        or expires <= now
        or seen is None
        or now - seen > timedelta(minutes=IDLE_MINUTES)
    ):
        raise InvalidToken("the session is unknown, expired or ended", remedy="log in again")
    return row, user


def resolve_session(
    session: Session,
    session_id: str,
    *,
    method: str = "GET",
    csrf: str | None = None,
    now: datetime | None = None,
) -> Principal:
    """The principal of a live session; for POST/PUT/PATCH/DELETE the CSRF token must match."""
    now = now or now_utc()
    row, user = _live(session, session_id, now)
    if method.upper() in UNSAFE_METHODS and not (csrf and hmac.compare_digest(csrf, row.csrf_token)):
        raise CsrfFailed()
    if now - (as_utc(row.last_seen_at) or now) > _TOUCH_EVERY:
        row.last_seen_at = now
    return principal_of(user, session_row=row)


def csrf_token(session: Session, session_id: str, *, now: datetime | None = None) -> str:
    """The CSRF token of a live session (for a page to embed in its forms)."""
    row, _ = _live(session, session_id, now or now_utc())
    return row.csrf_token


def end_session(session: Session, session_id: str, *, now: datetime | None = None) -> bool:
    """Log a session out; False if it was unknown or already ended."""
    result = session.execute(
        update(BrowserSession)
        .where(BrowserSession.session_hash == token_hash(session_id), BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now or now_utc())
    )
    return bool(getattr(result, "rowcount", 0))


def active_session_count(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    now = now or now_utc()
    rows = session.scalars(
        select(BrowserSession).where(BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None))
    )
    return sum(1 for r in rows if (as_utc(r.expires_at) or now) > now)


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "NewSession",
    "active_session_count",
    "csrf_token",
    "end_session",
    "login_session",
    "resolve_session",
]
