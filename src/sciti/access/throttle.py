"""Throttling of failed logins per client address (the per-account lockout lives on ``users``).

The account lockout stops guessing one account's password; this stops one address from trying a
few passwords against many accounts (password spraying). The limit is high enough that an office
behind one NAT address does not lock itself out by ordinary typing mistakes.

Every change to a counter is one statement (an upsert, then an atomic UPDATE ... RETURNING), so
concurrent failures from a new address neither collide on the insert nor lose a count, on
PostgreSQL as on SQLite (decision 0058).

Every check of a password or one-time code counts here, not only the login: the password change,
re-authentication before an MFA change, the MFA steps (decision 0082). A success never clears an
address's count: the failures age out with their window. Clearing on success let anyone holding one
valid account reset the count every 49 guesses; a success clears only that account's own count
(``users.failed_logins``).

While an address is blocked no failure is counted (nothing is checked), so ``failures`` counts the
*refused* attempts of the block instead; the first attempt after the block starts a new window.
Refusals are audited as ``login.throttled`` -- the first ``AUDIT_FIRST_REFUSALS`` of each block
one by one (who was tried, from where, why), then only the 16th, 32nd, 64th ... with the count
so far: at most 10 + log2(n) entries per address and block, however hard the address pushes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sciti.access.accounts import as_utc
from sciti.access.audit import audit
from sciti.access.errors import LoginThrottled
from sciti.ops.account_tables import LoginThrottle

CLIENT_MAX_FAILURES = 50
CLIENT_WINDOW_MINUTES = 15
CLIENT_BLOCK_MINUTES = 15
AUDIT_FIRST_REFUSALS = 10


def _key(client: str) -> str:
    return client[:100]


def _ensure_row(session: Session, key: str, now: datetime) -> None:
    """Create the address's row unless it exists; a concurrent creator wins without an error."""
    values: dict[str, Any] = {"client": key, "failures": 0, "window_start": now, "blocked_until": None}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    else:  # other databases: a savepoint keeps a lost race from failing the caller's transaction
        from sqlalchemy.exc import IntegrityError

        try:
            with session.begin_nested():
                session.execute(insert(LoginThrottle).values(values))
        except IntegrityError:
            pass


def _is_audited(refusals: int) -> bool:
    return refusals <= AUDIT_FIRST_REFUSALS or refusals & (refusals - 1) == 0


def check_client(session: Session, client: str, now: datetime, username: str | None = None) -> None:
    """Refuse (429) while ``client`` is blocked, counting and auditing the refusal (commits)."""
    key = _key(client)
    row = session.get(LoginThrottle, key)
    blocked = as_utc(row.blocked_until) if row else None
    if not (blocked and blocked > now):
        return
    refusals = session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.client == key)
        .values(failures=LoginThrottle.failures + 1)
        .returning(LoginThrottle.failures)
    ).scalar_one()
    retry = int((blocked - now).total_seconds()) + 1
    if _is_audited(refusals):
        audit(
            session,
            actor=(username or "").strip().lower()[:150],
            action="login.throttled",
            source=key,
            outcome="refused",
            details={
                "reason": f"the address made {CLIENT_MAX_FAILURES} failed logins in "
                f"{CLIENT_WINDOW_MINUTES} minutes and is blocked",
                "refusals": int(refusals),  # refused attempts from this address in this block so far
                "blocked_until": blocked.isoformat(),
            },
        )
    session.expire_all()
    session.commit()  # the count and its audit entry survive the caller's rollback
    raise LoginThrottled(details={"retry_after_seconds": retry})


def count_client_failure(session: Session, client: str, now: datetime) -> None:
    """Count one failure from ``client``; block it once the window holds too many."""
    key = _key(client)
    _ensure_row(session, key, now)
    # A stale window, or a block that has ended, starts afresh: this failure is the first.
    fresh = or_(
        LoginThrottle.window_start < now - timedelta(minutes=CLIENT_WINDOW_MINUTES),
        LoginThrottle.blocked_until <= now,
    )
    failures = session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.client == key)
        .values(
            failures=case((fresh, 1), else_=LoginThrottle.failures + 1),
            window_start=case((fresh, now), else_=LoginThrottle.window_start),
            blocked_until=case((fresh, None), else_=LoginThrottle.blocked_until),
        )
        .returning(LoginThrottle.failures)
    ).scalar_one()
    if failures >= CLIENT_MAX_FAILURES:
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.client == key)
            .values(failures=0, window_start=now, blocked_until=now + timedelta(minutes=CLIENT_BLOCK_MINUTES))
        )
    session.expire_all()


__all__ = [
    "AUDIT_FIRST_REFUSALS",
    "CLIENT_MAX_FAILURES",
    "check_client",
    "count_client_failure",
]
