"""Inspection feedback: a result linked to its assessment, kept in ops and in the lake for retraining.

The lake row goes to ``std.inspection_results`` like any acquired inspection result (source
``sciti-risk``), keyed by inspection id, so retraining and evaluation find API feedback and
connector feedback in one table.

An assessment has at most one result, so the hit-rate report counts each inspection once. The very
same result sent again (a client retrying after a lost answer) gets the stored one back and stores
nothing; a different result for an assessment that has one is a conflict (409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.lake import Lake
from sciti.model import get_kind, make_record_id
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine.errors import AssessmentNotFound, WorkflowConflict

FEEDBACK_SOURCE = "sciti-risk"
FRAUD_OUTCOMES = {"discrepancy", "seizure"}


@dataclass(frozen=True)
class InspectionInput:
    assessment_id: str
    outcome: str
    inspected_on: date
    inspection_type: str = "physical"
    fraud: bool | None = None  # default: discrepancy or seizure
    fraud_severity: int | None = None
    findings: str | None = None
    discrepancy_type: str | None = None
    revenue_raised: float | None = None
    revenue_currency: str | None = None
    inspection_id: str | None = None


def record_inspection(session: Session, lake: Lake, data: InspectionInput, *, actor: str) -> dict[str, Any]:
    """Store the result, close the queue item, write the lake row; returns what was stored."""
    return submit_inspection(session, lake, data, actor=actor)[0]


def submit_inspection(
    session: Session, lake: Lake, data: InspectionInput, *, actor: str
) -> tuple[dict[str, Any], bool]:
    """Like :func:`record_inspection`, and whether the result is new (False: the same result was
    already recorded, and what was stored then is returned)."""
    # Locked (on PostgreSQL) so that two results posted at once for one assessment cannot both pass
    # the check below.
    item = session.get(RiskQueueItem, data.assessment_id, with_for_update=True)
    if item is None:
        raise AssessmentNotFound(
            f"no flagged record with assessment id {data.assessment_id!r}",
            details={"assessment_id": data.assessment_id},
        )
    fraud = data.fraud if data.fraud is not None else data.outcome in FRAUD_OUTCOMES
    earlier = session.scalars(
        select(RiskInspection)
        .where(RiskInspection.assessment_id == item.assessment_id)
        .order_by(RiskInspection.created_at)
        .limit(1)
    ).first()
    if earlier is not None:
        # A retry is answered, not refused: the client cannot tell whether its first try got
        # through, and an error would make it think the result is lost.
        if _same(earlier, data, fraud, lake):
            return _answer(earlier, item), False
        raise WorkflowConflict(
            f"an inspection result is already recorded for assessment {item.assessment_id}: "
            f"inspection {earlier.inspection_id}, outcome {earlier.outcome}, "
            f"inspected on {earlier.inspected_on.isoformat()}",
            remedy="an assessment takes one result and a recorded result cannot be changed through the "
            "API; if it is wrong, report it to an administrator with its inspection id",
            details={"assessment_id": item.assessment_id, "inspection_id": earlier.inspection_id},
        )
    inspection_id = data.inspection_id or f"INS-{uuid.uuid4().hex[:16]}"
    if session.get(RiskInspection, inspection_id) is not None:
        raise WorkflowConflict(
            f"inspection {inspection_id} is already recorded", remedy="use a new inspection id"
        )
    selection = _selection(item)
    row = RiskInspection(
        inspection_id=inspection_id,
        assessment_id=item.assessment_id,
        kind=item.kind,
        record_id=item.record_id,
        outcome=data.outcome,
        fraud=fraud,
        selection_reason=selection,
        rule_ids=list(item.rule_ids or []),
        model_version=item.model_version,
        score=item.score,
        revenue_raised=data.revenue_raised,
        findings=data.findings,
        inspected_on=data.inspected_on,
        actor=actor,
    )
    session.add(row)
    item.status = "done"
    audit(
        session,
        actor=actor,
        action="risk.inspection",
        target=f"assessment:{item.assessment_id}",
        details={"inspection_id": inspection_id, "outcome": data.outcome, "fraud": fraud},
    )
    session.flush()
    _write_lake(lake, item, data, inspection_id, fraud, selection, actor)
    return _answer(row, item), True


def _answer(row: RiskInspection, item: RiskQueueItem) -> dict[str, Any]:
    return {
        "inspection_id": row.inspection_id,
        "assessment_id": item.assessment_id,
        "kind": item.kind,
        "record_id": item.record_id,
        "outcome": row.outcome,
        "fraud": row.fraud,
        "selection_reason": row.selection_reason,
        "rule_ids": list(row.rule_ids or []),
        "model_version": row.model_version,
    }


# Kept only in the lake row, so a retry is compared with that too.
_LAKE_ONLY = ("inspection_type", "fraud_severity", "discrepancy_type", "revenue_currency")


def _same(row: RiskInspection, data: InspectionInput, fraud: bool, lake: Lake) -> bool:
    """Whether ``data`` is the result already stored as ``row`` (an inspection id left out matches)."""
    if data.inspection_id not in (None, row.inspection_id):
        return False
    stored = (row.outcome, row.fraud, row.inspected_on, row.findings, row.revenue_raised)
    if stored != (data.outcome, fraud, data.inspected_on, data.findings, data.revenue_raised):
        return False
    kind = get_kind("inspection_result")
    if not lake.exists(kind.ident):
        return False
    key = make_record_id(kind.name, FEEDBACK_SOURCE, row.inspection_id)
    # pyiceberg's own __init__ takes (term, literal); mypy sees only the pydantic fields.
    this_row = EqualTo("record_id", key)  # type: ignore[call-arg, arg-type, misc]
    scan = lake.table(kind.ident).scan(row_filter=this_row, selected_fields=_LAKE_ONLY, limit=1)
    found = scan.to_arrow().to_pylist()
    return bool(found) and all(found[0][f] == getattr(data, f) for f in _LAKE_ONLY)


def _selection(item: RiskQueueItem) -> str:
    """Why the record was inspected: the random sample (kept apart for unbiased evaluation), an
    officer's override, or the risk engine."""
    if item.sampled:
        return "random"
    if item.lane != item.assigned_lane:
        return "officer"
    return "risk"


def _write_lake(
    lake: Lake,
    item: RiskQueueItem,
    data: InspectionInput,
    inspection_id: str,
    fraud: bool,
    selection: str,
    actor: str,
) -> None:
    kind = get_kind("inspection_result")
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "record_id": make_record_id(kind.name, FEEDBACK_SOURCE, inspection_id),
        "source": FEEDBACK_SOURCE,
        "batch_id": f"feedback-{inspection_id}",
        "locator": f"api:/api/v1/risk/inspections#{inspection_id}",
        "ingested_at": now,
        "inspection_id": inspection_id,
        "target_kind": item.kind,
        "target_id": item.subject_ref,
        "target_record_id": item.record_id,
        "declaration_id": item.subject_ref.split("/")[0] if item.kind == "declaration" else None,
        "inspected_on": data.inspected_on,
        "inspected_at": None,
        "office_code": item.office_code,
        "inspection_type": data.inspection_type,
        "selection_reason": selection,
        "risk_rule_id": ",".join(item.rule_ids or []) or None,
        "risk_score": item.score,
        "outcome": data.outcome,
        "findings": data.findings,
        "discrepancy_type": data.discrepancy_type,
        "revenue_raised": data.revenue_raised,
        "revenue_currency": data.revenue_currency,
        "fraud": fraud,
        "fraud_severity": data.fraud_severity,
        "inspector_id": actor,
    }
    schema = kind.arrow_schema()
    row = {f.name: values.get(f.name) for f in schema}
    if row["revenue_raised"] is not None:
        from decimal import Decimal

        row["revenue_raised"] = Decimal(str(row["revenue_raised"]))
    table = pa.Table.from_pylist([row], schema=schema)
    lake.ensure_table(kind.ident, schema)
    lake.upsert(kind.ident, table, "record_id", batch_id=f"feedback-{inspection_id}")


__all__ = ["FEEDBACK_SOURCE", "InspectionInput", "record_inspection", "submit_inspection"]
