"""Web application preferences: what a person chose in the UI and expects on every device.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow


class UserPreference(Base):
    """One row per account: the interface language (``en`` or ``zh-Hant``)."""

    __tablename__ = "user_preferences"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SavedQuery(Base):
    """A SQL workbench query a person kept under a name (their own; never shared implicitly)."""

    __tablename__ = "saved_queries"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sql: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
