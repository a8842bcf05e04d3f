"""Access policy state: the hash-chained audit trail and its head.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).

``audit_log`` is append-only by contract: no code path updates or deletes a row, and
``sciti.access.audit.verify`` detects it when someone does so behind our back. ``audit_head`` is
one row (id 1) holding the last sequence number and hash: writers lock it to order appends, and
verification compares it with the log to catch truncation of the newest entries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_at", "at"),
    )
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    purpose: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(50), default="ok")
    # Canonical JSON text (sorted keys): hashed exactly as stored, whatever the database's JSON type does.
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    hash: Mapped[str] = mapped_column(String(64))


__all__ = ["AuditEntry", "AuditHead", "Base"]
