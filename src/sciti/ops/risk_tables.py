"""Risk workflow: flagged-record queue, assignments, lane overrides, inspection feedback links, capacity.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from sciti.ops.models import Base, utcnow

ONE_OPEN_WHERE = "status IN ('open', 'assigned')"  # the statuses of work still to do on a record
# How soon a lane's work is due, most urgent highest: red (physical inspection before release),
# yellow (document check), blue (post-clearance audit, can wait), then any other. The queue is
# ordered by it first (risk.engine.workqueue), with an index on it: queries must use this very
# expression. Laid out one clause a line as PostgreSQL prints an index back, so that the check
# that migrations match the models (tests/ops) finds the index the same on both databases.
LANE_URGENCY = (
    "\nCASE lane\n    WHEN 'red' THEN 3\n    WHEN 'yellow' THEN 2\n    WHEN 'blue' THEN 1\n    ELSE 0\nEND"
)


class RiskOutbox(Base):
    """Durable buffer of assessments on their way to the lake table ``risk.assessments``.

    An assessment is committed here before its answer is sent; the flusher claims rows in bulk
    (stamps ``flush_batch``), appends them to the lake under that batch id, then deletes them. A
    crash between the append and the delete is healed by asking the lake whether the batch landed.
    """

    __tablename__ = "risk_outbox"
    __table_args__ = (Index("ix_risk_outbox_batch", "flush_batch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # the assessment as JSON (one lake row)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    flush_batch: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None]


class RiskQueueItem(Base):
    """A flagged record (lane other than green, or sampled) waiting for an officer.

    Rows are never deleted: a re-assessment marks the open item ``superseded`` (risk.engine.enqueue).
    """

    __tablename__ = "risk_queue"
    __table_args__ = (
        # The queue's page order: lane urgency, score, assessment id (migration 0004).
        Index("ix_risk_queue_urgency", text(f"({LANE_URGENCY})"), "score", "assessment_id"),
        Index("ix_risk_queue_filter", "kind", "office_code", "lane"),
        # A record's items, looked up in every commit that queues (enqueue): by kind and record id
        # together, or SQLite's planner takes the filter index above and reads the whole kind.
        Index("ix_risk_queue_record", "kind", "record_id"),
        # At most one open or assigned item per record: enqueue supersedes before it inserts, and
        # this index makes two writers racing on the same record (batch and real time on
        # PostgreSQL) fail and retry instead of leaving two items.
        Index(
            "ux_risk_queue_one_open",
            "kind",
            "record_id",
            unique=True,
            sqlite_where=text(ONE_OPEN_WHERE),
            postgresql_where=text(ONE_OPEN_WHERE),
        ),
    )
    assessment_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    subject_ref: Mapped[str] = mapped_column(String(200), default="")  # e.g. the declaration id
    office_code: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    lane: Mapped[str] = mapped_column(String(10))  # current lane: latest override, else assigned lane
    assigned_lane: Mapped[str] = mapped_column(String(10))  # what the engine decided
    sampled: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Each reason as its code and values, line for line: one JSON array of objects, as text
    # (risk/engine/reasons.py). Text, so a scoring run queues its items without parsing and
    # re-serialising every line. NULL on items queued before codes were kept (migration 0007).
    reason_codes: Mapped[str | None] = mapped_column(Text)
    rule_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(80))
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # open|assigned|done|superseded: a record has at most one open or assigned item per kind
    status: Mapped[str] = mapped_column(String(12), default="open")
    assigned_to: Mapped[str | None] = mapped_column(String(150))
    assigned_at: Mapped[datetime | None]
    # A later assessment of the record: the one that superseded this item, or, on an item an
    # officer already worked (kept, not replaced), the re-assessment the officer should look at.
    newer_assessment_id: Mapped[str | None] = mapped_column(String(40))


class RiskOverride(Base):
    """An officer's lane change: its own trigger, append-only (who, why, from, to)."""

    __tablename__ = "risk_overrides"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(String(40), index=True)
    from_lane: Mapped[str] = mapped_column(String(10))
    to_lane: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskInspection(Base):
    """An inspection result linked to the assessment that selected (or released) the record."""

    __tablename__ = "risk_inspections"
    inspection_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    assessment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    fraud: Mapped[bool] = mapped_column(Boolean, default=False)
    selection_reason: Mapped[str] = mapped_column(String(20), default="risk")
    rule_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(80))
    score: Mapped[float | None] = mapped_column(Float)
    revenue_raised: Mapped[float | None] = mapped_column(Float)
    findings: Mapped[str | None] = mapped_column(Text)
    inspected_on: Mapped[date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskCapacityUse(Base):
    """Red-lane inspections handed out per office and day (the capacity counter)."""

    __tablename__ = "risk_capacity_use"
    office_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class RiskScoringPart(Base):
    """A part of a scoring run that is queued and counted, with its lake commit still to come.

    Written in the part's transaction, with its queue items and red places; deleted once its
    staged files are committed to ``risk.assessments``. One that outlives a crash (or a failed lake
    commit) is finished by the flusher or the next scoring run: they commit the files unless the
    lake already holds the part's batch id.
    """

    __tablename__ = "risk_scoring_parts"
    batch_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    files: Mapped[list[Any]] = mapped_column(JSON)  # the staged Parquet files' locations
    rows: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)  # written, or taken up to finish


__all__ = [
    "Base",
    "RiskCapacityUse",
    "RiskInspection",
    "RiskOutbox",
    "RiskOverride",
    "RiskQueueItem",
    "RiskScoringPart",
]
