"""Operational tables: state that changes in place (unlike the lake, which is append-and-snapshot).

Any change here needs ``make migration`` (pre-release: the initial migration is regenerated).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    office_code: Mapped[str | None] = mapped_column(String(32))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # account expiry: no login or token use from then on


class ApiToken(Base):
    """Bearer tokens. Only the SHA-256 of a token is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Batch(Base):
    """One acquisition batch: a file, a message or an extraction window, committed atomically."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("connector", "fingerprint", name="uq_batch_fingerprint"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connector: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(100))
    transport: Mapped[str] = mapped_column(String(20), default="file")
    unit: Mapped[str] = mapped_column(Text, default="")
    fingerprint: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|committed|failed
    # Who works on the batch now, and until when (decision 0094): a process takes the batch with
    # a conditional UPDATE and renews the time while it works, so two processes never derive and
    # append one unit at once; a crashed owner's claim runs out and recovery takes the batch.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None]
    received: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    # Rows or units whose records were all stored before with the same values: counted, neither
    # stored again nor quarantined (decision 0105). received = stored + quarantined + already_stored.
    already_stored: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Of the stored, rows that replaced a record stored with other values (on_change: replace, 0112).
    replaced: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tables: Mapped[dict[str, Any]] = mapped_column(default=dict)  # table -> rows stored
    resubmission_of: Mapped[int | None] = mapped_column(Integer)  # quarantine id re-submitted
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    @property
    def reconciled(self) -> bool:
        """Whether every row or unit received is accounted for (decision 0105)."""
        return self.received == self.stored + self.quarantined + self.already_stored


class QuarantineRecord(Base):
    """A unit that could not be stored, with its locator and a reason a person understands."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("batch_id", "locator", name="uq_quarantine_locator"),
        Index("ix_quarantine_status", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    connector: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(100))
    locator: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|resubmitted|discarded
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(150))
    resubmit_batch_id: Mapped[str | None] = mapped_column(String(40))


class ConnectorState(Base):
    """Per-connector state that must survive restarts: watermarks, cursors, offsets."""

    __tablename__ = "connector_state"
    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StagedRecord(Base):
    """Real-time feed records accepted but not yet flushed into the lake (durable buffer).

    A record is acknowledged to its sender once staged here; a flush assigns ``flush_batch`` to a
    set of rows and commits them to the lake under that batch id, then stamps ``flushed_at``. A
    restart finds rows whose batch is already in the lake and finishes them instead of writing
    twice. Flushed ids are kept for a while so a redelivered message is recognised and dropped.
    """

    __tablename__ = "staged_records"
    __table_args__ = (UniqueConstraint("connector", "message_id", name="uq_staged_message"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connector: Mapped[str] = mapped_column(String(100), index=True)
    message_id: Mapped[str] = mapped_column(String(128))
    locator: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    flush_batch: Mapped[str | None] = mapped_column(String(40), index=True)
    # Set when the flush is in the lake; the row (payload emptied) is kept a while to drop redeliveries.
    flushed_at: Mapped[datetime | None]
