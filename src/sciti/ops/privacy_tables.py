"""Secrets (local store metadata), retention rules, the consent register, transfer rules.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow


class StoredSecret(Base):
    """One named secret of the local encrypted store: who may manage it, its current version."""

    __tablename__ = "secrets"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    shared_with: Mapped[list[Any]] = mapped_column(default=list)  # role names (groups)
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(150), default="")


class SecretVersion(Base):
    """One version of a secret: the value sealed with its own data key, the data key wrapped by the
    master key (envelope encryption). Nothing here is readable without the key file."""

    __tablename__ = "secret_versions"
    name: Mapped[str] = mapped_column(ForeignKey("secrets.name", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))  # which master key wrapped the data key
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150), default="")


class RetentionOverride(Base):
    """An instance's own retention period for a record kind, replacing the shipped default."""

    __tablename__ = "retention_overrides"
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    date_field: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by: Mapped[str] = mapped_column(String(150))


class Consent(Base):
    """Department A may use person P's data held by department B for purpose X until a date.

    Recorded, never edited: withdrawal sets ``withdrawn_at``/``withdrawn_by`` and keeps the row.
    """

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(200), index=True)  # the person (document number, id)
    holder: Mapped[str] = mapped_column(String(100))  # department that holds the data
    recipient: Mapped[str] = mapped_column(String(100))  # department that may use it
    purpose: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[list[Any]] = mapped_column(default=list)  # record kinds covered; empty = every kind
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text, default="")  # where the signed consent is kept
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(150))
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(String(150))


class TransferRule(Base):
    """A record kind that may be sent to a partner administration, and the fields that may go."""

    __tablename__ = "transfer_rules"
    __table_args__ = (UniqueConstraint("kind", "partner", name="uq_transfer_kind_partner"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    partner: Mapped[str] = mapped_column(String(100), index=True)
    fields: Mapped[list[Any]] = mapped_column(default=list)
    legal_basis: Mapped[str] = mapped_column(Text, default="")  # agreement, MoU, treaty article
    valid_until: Mapped[date | None] = mapped_column(Date)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by: Mapped[str] = mapped_column(String(150))


__all__ = ["Consent", "RetentionOverride", "SecretVersion", "StoredSecret", "TransferRule"]
