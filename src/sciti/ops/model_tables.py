"""Model registry: model versions (never edited in place), metrics, champion/challenger.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).

A version's content (features, parameters, metrics, training window, lake snapshot, artefact key)
is written once. Only ``status`` changes (candidate -> challenger | champion -> retired), and every
change is also an append-only ``model_events`` row with who, when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow

__all__ = ["Base", "ModelEvent", "ModelVersion"]


class ModelVersion(Base):
    """One trained model: what it reads, how it was trained, how well it did, where its file is."""

    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_kind_status", "kind", "status"),)
    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(40))  # fraud | critical
    algorithm: Mapped[str] = mapped_column(String(40), default="lightgbm")
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    features: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    snapshot_id: Mapped[str] = mapped_column(String(64))
    # The Iceberg snapshot of each source table it was trained on: lake upkeep keeps these.
    lake_snapshots: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_since: Mapped[str | None] = mapped_column(String(10))
    train_until: Mapped[str | None] = mapped_column(String(10))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    artefact_key: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelEvent(Base):
    """Append-only history of a version's status: trained, promoted, retired."""

    __tablename__ = "model_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_versions.version", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # trained | champion | challenger | retired
    actor: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
