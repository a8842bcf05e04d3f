"""Account lifecycle for administrators: expiry dates, unlocking, MFA reset, the dormant report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sciti.access.accounts import as_utc, get_user, now_utc, revoke_user_tokens
from sciti.access.mfa import mfa_enabled, remove_mfa
from sciti.ops import ApiToken, User


@dataclass(frozen=True)
class DormantAccount:
    username: str
    roles: tuple[str, ...]
    last_login_at: datetime | None
    created_at: datetime | None
    days_idle: int


def set_expiry(
    session: Session, username: str, expires_at: datetime | None, *, now: datetime | None = None
) -> User:
    """Set (or clear, with None) the date an account stops working; a past date ends it now."""
    user = get_user(session, username)
    user.expires_at = expires_at
    now = now or now_utc()
    if expires_at is not None and (as_utc(expires_at) or now) <= now:
        revoke_user_tokens(session, user.id, now=now)
    return user


def unlock(session: Session, username: str) -> User:
    """Lift a lockout after failed logins (the password is unchanged)."""
    user = get_user(session, username)
    user.failed_logins = 0
    user.locked_until = None
    return user


def reset_mfa(session: Session, username: str) -> bool:
    """Remove a user's second factor (lost phone): they log in with the password and enrol again.

    Their tokens and sessions are revoked: anything obtained with the old factor ends too.
    Returns False if the user had no MFA.
    """
    user = get_user(session, username)
    had = remove_mfa(session, user.id)
    revoke_user_tokens(session, user.id)
    return had


def dormant_accounts(session: Session, days: int, *, now: datetime | None = None) -> list[DormantAccount]:
    """Enabled accounts with no login (nor use of any of their tokens) in ``days`` days.

    Never-used accounts count from their creation. Service accounts never log in, so the last use
    of one of their tokens counts as activity.
    """
    now = now or now_utc()
    cutoff = now - timedelta(days=days)
    token_use = dict(
        session.execute(
            select(ApiToken.user_id, func.max(ApiToken.last_used_at)).group_by(ApiToken.user_id)
        ).all()
    )
    found = []
    for user in session.scalars(select(User).where(User.disabled.is_(False)).order_by(User.username)):
        seen = [t for t in (as_utc(user.last_login_at), as_utc(token_use.get(user.id))) if t is not None]
        last = max(seen) if seen else None
        since = last or as_utc(user.created_at) or now
        if since <= cutoff:
            found.append(
                DormantAccount(
                    username=user.username,
                    roles=tuple(user.roles or ()),
                    last_login_at=last,
                    created_at=as_utc(user.created_at),
                    days_idle=(now - since).days,
                )
            )
    return found


def account_state(session: Session, user: User, *, now: datetime | None = None) -> str:
    """One word for lists: disabled, expired, locked, must_change_password, active."""
    now = now or now_utc()
    expires, locked = as_utc(user.expires_at), as_utc(user.locked_until)
    if user.disabled:
        return "disabled"
    if expires is not None and expires <= now:
        return "expired"
    if locked is not None and locked > now:
        return "locked"
    if user.must_change_password:
        return "must_change_password"
    return "active"


__all__ = [
    "DormantAccount",
    "account_state",
    "dormant_accounts",
    "mfa_enabled",
    "reset_mfa",
    "set_expiry",
    "unlock",
]
