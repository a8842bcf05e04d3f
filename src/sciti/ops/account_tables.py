"""Account security: MFA (TOTP) secrets, recovery codes, sessions, SSO identities, login throttling.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow


class MfaSecret(Base):
    """One TOTP secret per account, encrypted with AES-GCM under the instance key (never in clear).

    ``confirmed_at`` is empty until the user proved possession with a code; only then is MFA
    required at login. ``last_step`` is the last accepted 30-second step: a code is never accepted
    twice (RFC 6238 section 5.2).
    """

    __tablename__ = "mfa_secrets"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """One-time recovery codes; only their SHA-256 is kept (they are random, 80 bits)."""

    __tablename__ = "mfa_recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class BrowserSession(Base):
    """A server-side web session. The cookie holds a random id; the table keeps its SHA-256."""

    __tablename__ = "browser_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(20), default="password")  # password | sso
    client: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed logins per client address in a sliding window (the account lockout is on ``users``)."""

    __tablename__ = "login_throttle"
    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[datetime | None]


class SsoIdentity(Base):
    """An account's identity at an OpenID Connect provider: (issuer, subject) is stable, emails are not."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_sso_identity"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class SsoRequest(Base):
    """A login started at the identity provider: state, nonce and PKCE verifier, used once."""

    __tablename__ = "sso_requests"
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_url: Mapped[str] = mapped_column(String(500), default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


__all__ = ["BrowserSession", "LoginThrottle", "MfaSecret", "RecoveryCode", "SsoIdentity", "SsoRequest"]
