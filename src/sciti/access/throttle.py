"""Throttling of failed logins per client address (the per-account lockout lives on ``users``).

The account lockout stops guessing one account's password; this stops one address from trying a
few passwords against many accounts (password spraying). The limit is high enough that an office
behind one NAT address does not lock itself out by ordinary typing mistakes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from sciti.access.accounts import as_utc
from sciti.access.errors import LoginThrottled
from sciti.ops.account_tables import LoginThrottle

CLIENT_MAX_FAILURES = 50
CLIENT_WINDOW_MINUTES = 15
CLIENT_BLOCK_MINUTES = 15


def check_client(session: Session, client: str, now: datetime) -> None:
    """Refuse (429) while ``client`` is blocked."""
    row = session.get(LoginThrottle, client[:100])
    blocked = as_utc(row.blocked_until) if row else None
    if blocked and blocked > now:
        raise LoginThrottled(details={"retry_after_seconds": int((blocked - now).total_seconds()) + 1})


def count_client_failure(session: Session, client: str, now: datetime) -> None:
    """Count one failure from ``client``; block it once the window holds too many."""
    key = client[:100]
    row = session.get(LoginThrottle, key)
    if row is None:
        session.add(LoginThrottle(client=key, failures=0, window_start=now))
        session.flush()
        row = session.get(LoginThrottle, key)
    assert row is not None
    start = as_utc(row.window_start) or now
    if now - start > timedelta(minutes=CLIENT_WINDOW_MINUTES):
        row.failures, row.window_start = 0, now
        session.flush()
    # Atomic increment: concurrent failures from one address all count.
    failures = session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.client == key)
        .values(failures=LoginThrottle.failures + 1)
        .returning(LoginThrottle.failures)
    ).scalar_one()
    if failures >= CLIENT_MAX_FAILURES:
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.client == key)
            .values(failures=0, window_start=now, blocked_until=now + timedelta(minutes=CLIENT_BLOCK_MINUTES))
        )
    session.expire(row)


def clear_client(session: Session, client: str) -> None:
    """A successful login from ``client`` clears its count (not an active block)."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.client == client[:100], LoginThrottle.blocked_until.is_(None)
        )
    )


__all__ = ["CLIENT_MAX_FAILURES", "check_client", "clear_client", "count_client_failure"]
