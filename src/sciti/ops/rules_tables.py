"""Risk rules: drafts, versions with history, four-eyes approvals, dry-run results.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).

A version's definition is never edited: a change is a new version. Its ``status`` is workflow
state (draft -> submitted -> approved | rejected; superseded when a newer version replaces it
before approval); every step is also an append-only ``rule_decisions`` row with who, when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow


class Rule(Base):
    """A risk rule's identity; its content lives in its versions."""

    __tablename__ = "rules"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    # The approved version in effect (None until the first approval); a retirement is a version too.
    effective_version: Mapped[int | None] = mapped_column(Integer)


class RuleVersion(Base):
    """One immutable version of a rule: the canonical YAML and its parsed form."""

    __tablename__ = "rule_versions"
    __table_args__ = (
        UniqueConstraint("rule_id", "version", name="uq_rule_version"),
        Index("ix_rule_versions_kind_status", "kind", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    definition: Mapped[dict[str, Any]] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    author: Mapped[str] = mapped_column(String(150))
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(150))
    decided_at: Mapped[datetime | None]


class RuleDecision(Base):
    """Append-only log of every workflow step on a version: create, submit, approve, reject, supersede."""

    __tablename__ = "rule_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(150))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleDryRun(Base):
    """The figures of a dry-run of a version, kept so the approver sees what the author saw."""

    __tablename__ = "rule_dry_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("rule_versions.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    days: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    known_frauds: Mapped[int] = mapped_column(Integer)
    hit_rate: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column()
    actor: Mapped[str] = mapped_column(String(150))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RulesGeneration(Base):
    """One counter per kind, raised whenever the rules in effect for it may have changed.

    The engine (and ``active_rules``) compares it with the value it compiled at, so a change on one
    server process is seen by every other process at its next poll, without restarts.
    """

    __tablename__ = "rules_generation"
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["Base", "Rule", "RuleDecision", "RuleDryRun", "RuleVersion", "RulesGeneration"]
