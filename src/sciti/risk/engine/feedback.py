"""Inspection feedback: a result linked to its assessment, kept in ops and in the lake for retraining.

The lake row goes to ``std.inspection_results`` like any acquired inspection result (source
``sciti-risk``), keyed by inspection id, so retraining and evaluation find API feedback and
connector feedback in one table.

An assessment has at most one result, so the hit-rate report counts each inspection once. The very
same result sent again (a client retrying after a lost answer) gets the stored one back and stores
nothing; a different result for an assessment that has one is a conflict (409).

An office-bound caller (``scope``: its office) records results for its office's items only; an
item of another office is answered as an unknown assessment id (see ``workqueue``). A record an
officer has taken takes its result from that officer or a supervisor only (409 for anyone else).

A result is checked before anything is stored (docs/decisions/0089), since training takes its
labels from it: a revenue the lake's decimal column can hold (finite, not negative), an inspection
date neither in the future nor before the assessment (one day either way for time zones), and
``fraud`` / ``fraud_severity`` / ``revenue_raised`` / ``discrepancy_type`` that agree with the
outcome (:data:`OUTCOMES`). A problem is an :class:`~sciti.errors.InvalidInput` listing each field.

A record takes one result, whichever of its assessments it is posted to: a result may go to a
superseded assessment (the officer inspected on the strength of it; the newer one may be green,
with no queue item), the answer says so (``superseded``, ``newer_assessment_id``), and the record's
other open items close with it. A second result for the record through another assessment is a
conflict (409) naming the first, so the lake never holds two SCITI labels for one record.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

import pyarrow as pa
from pyiceberg.expressions import EqualTo
from sqlalchemy import String, select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.errors import InvalidInput
from sciti.lake import Lake
from sciti.model import get_kind, make_record_id
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine.errors import AssessmentNotFound, AssessmentOutsideOffice, WorkflowConflict
from sciti.risk.engine.workqueue import OPEN_STATUSES, in_scope, refuse_taken

FEEDBACK_SOURCE = "sciti-risk"


@dataclass(frozen=True)
class Outcome:
    """What an outcome allows: ``fraud`` when not sent, the ``fraud`` values that do not contradict
    it, and whether it can go with a discrepancy type and revenue raised (something was found)."""

    fraud_default: bool
    fraud_allowed: frozenset[bool]
    found: bool


_EITHER = frozenset({True, False})
_NO_FRAUD = frozenset({False})
OUTCOMES: dict[str, Outcome] = {
    # The control found nothing: no fraud, nothing to type or to charge.
    "no_discrepancy": Outcome(False, _NO_FRAUD, found=False),
    # Something found: fraud unless the officer says it was an honest error.
    "discrepancy": Outcome(True, _EITHER, found=True),
    "seizure": Outcome(True, _EITHER, found=True),
    # Handed to another unit (investigation, audit): fraud only when the officer says it is established.
    "referred": Outcome(False, _EITHER, found=True),
    # No control was carried out: nothing can have been established (and training leaves it out).
    "not_performed": Outcome(False, _NO_FRAUD, found=False),
}
FRAUD_OUTCOMES = frozenset(name for name, o in OUTCOMES.items() if o.fraud_default)

# The lake column revenue_raised is a decimal(precision, scale): an amount must be below
# 10^(precision - scale) and is stored rounded (half to even) to ``scale`` places, as ingest does.
_REVENUE_TYPE = cast(
    pa.Decimal128Type, get_kind("inspection_result").arrow_schema().field("revenue_raised").type
)
REVENUE_LIMIT = 10 ** (_REVENUE_TYPE.precision - _REVENUE_TYPE.scale)  # exclusive
_REVENUE_STEP = Decimal(1).scaleb(-_REVENUE_TYPE.scale)
# The length the operational table keeps (PostgreSQL refuses longer).
INSPECTION_ID_MAX = int(cast(String, RiskInspection.__table__.c["inspection_id"].type).length or 0)
# inspected_on is the office's calendar day; the server's is UTC's. Offices run from UTC-12 to
# UTC+14, so an office's day is at most one day after or before UTC's.
CLOCK_SKEW = timedelta(days=1)


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


def fraud_of(data: InspectionInput) -> bool:
    """The label: ``fraud`` as sent; else what ``fraud_severity`` says (0 none, 1-2 fraud); else the
    outcome's default (discrepancy and seizure: fraud)."""
    if data.fraud is not None:
        return data.fraud
    if data.fraud_severity is not None:
        return data.fraud_severity > 0
    outcome = OUTCOMES.get(data.outcome)
    return outcome is not None and outcome.fraud_default


def inspection_problems(data: InspectionInput, today: date | None = None) -> list[tuple[str, str]]:
    """(field, problem) for each value that cannot be stored, or contradicts the outcome.

    The checks that need no stored state; the date of the assessment is checked on recording."""
    problems: list[tuple[str, str]] = []
    outcome = OUTCOMES.get(data.outcome)
    if outcome is None:
        return [("outcome", f"{data.outcome!r} is not an outcome; use one of {', '.join(OUTCOMES)}")]
    latest = (today or datetime.now(UTC).date()) + CLOCK_SKEW
    if data.inspected_on > latest:
        problems.append(
            (
                "inspected_on",
                f"{data.inspected_on.isoformat()} is in the future; send the day the control was done",
            )
        )
    revenue = data.revenue_raised
    if revenue is not None and not (math.isfinite(revenue) and 0 <= revenue < REVENUE_LIMIT):
        problems.append(
            ("revenue_raised", f"must be a finite amount of at least 0 and below {REVENUE_LIMIT:,}")
        )
    fraud = fraud_of(data)
    severity = data.fraud_severity
    if severity is not None and not 0 <= severity <= 2:
        problems.append(("fraud_severity", "must be 0 (no fraud), 1 (fraud) or 2 (critical fraud)"))
    elif severity is not None and (severity > 0) != fraud:
        said = "fraud" if fraud else "no fraud"
        problems.append(("fraud_severity", f"{severity} contradicts fraud: {str(fraud).lower()} ({said})"))
    if fraud not in outcome.fraud_allowed:
        field = "fraud" if data.fraud is not None else "fraud_severity"
        problems.append((field, f"an outcome of {data.outcome} cannot establish fraud"))
    if not outcome.found:
        if revenue:
            problems.append(("revenue_raised", f"an outcome of {data.outcome} raises no revenue"))
        if data.discrepancy_type:
            problems.append(("discrepancy_type", f"an outcome of {data.outcome} has no discrepancy"))
    return problems


def check_inspection(data: InspectionInput, today: date | None = None) -> InspectionInput:
    """``data`` with its revenue rounded as the lake keeps it; :class:`InvalidInput` listing each
    field at fault when it cannot be recorded as it is."""
    _refuse(inspection_problems(data, today))
    if data.revenue_raised is None:
        return data
    rounded = Decimal(repr(data.revenue_raised)).quantize(_REVENUE_STEP, rounding=ROUND_HALF_EVEN)
    return replace(data, revenue_raised=float(rounded))


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        names = ", ".join(dict.fromkeys(f for f, _ in problems))
        raise InvalidInput(
            f"the inspection result is invalid: {names}",
            remedy="correct the listed fields (docs/risk-engine.md, inspection results)",
            details={"fields": [{"field": f, "problem": why} for f, why in problems]},
        )


def record_inspection(
    session: Session,
    lake: Lake,
    data: InspectionInput,
    *,
    actor: str,
    scope: str | None,
    supervisor: bool = False,
) -> dict[str, Any]:
    """Store the result, close the queue item, write the lake row; returns what was stored."""
    return submit_inspection(session, lake, data, actor=actor, scope=scope, supervisor=supervisor)[0]


def submit_inspection(
    session: Session,
    lake: Lake,
    data: InspectionInput,
    *,
    actor: str,
    scope: str | None,
    supervisor: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Like :func:`record_inspection`, and whether the result is new (False: the same result was
    already recorded, and what was stored then is returned).

    A record someone else has taken (any of its open items) takes a result from its taker or a
    ``supervisor`` only: the result closes the taker's item."""
    data = check_inspection(data)
    item = _locked_item(session, data.assessment_id, scope)
    assessed_on = _utc(item.assessed_at).date()
    if data.inspected_on < assessed_on - CLOCK_SKEW:
        # The result is feedback on this assessment's selection: an earlier control was not selected
        # by it, and would credit its rules with a hit they did not make.
        why = (
            f"{data.inspected_on.isoformat()} is before assessment {item.assessment_id} was made "
            f"({assessed_on.isoformat()}); a control done before the assessment is sent with the "
            "source's inspection results (std.inspection_results), not for this assessment"
        )
        _refuse([("inspected_on", why)])
    fraud = fraud_of(data)
    earlier = _first_result(session, RiskInspection.assessment_id == item.assessment_id)
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
    _refuse_taken_record(session, item, actor, supervisor)
    _refuse_second_result(session, item, scope)
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
    closed = _close_other_items(session, item)
    audit(
        session,
        actor=actor,
        action="risk.inspection",
        target=f"assessment:{item.assessment_id}",
        details={
            "inspection_id": inspection_id,
            "outcome": data.outcome,
            "fraud": fraud,
            "newer_assessment_id": item.newer_assessment_id,
            "closed_items": closed,
        },
    )
    session.flush()
    _write_lake(lake, item, data, inspection_id, fraud, selection, actor)
    return _answer(row, item), True


def _locked_item(session: Session, assessment_id: str, scope: str | None) -> RiskQueueItem:
    """The caller's item, with every item of its record locked (on PostgreSQL), in one order, so
    that two results posted at once for one record, through one assessment or two, cannot both
    pass the checks that follow."""
    item = session.get(RiskQueueItem, assessment_id)
    if item is None or not in_scope(item.office_code, scope):
        error = AssessmentNotFound if item is None else AssessmentOutsideOffice
        raise error(
            f"no flagged record with assessment id {assessment_id!r}",
            details={"assessment_id": assessment_id},
        )
    session.scalars(
        select(RiskQueueItem)
        .where(RiskQueueItem.kind == item.kind, RiskQueueItem.record_id == item.record_id)
        .order_by(RiskQueueItem.assessment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return item


def _refuse_taken_record(session: Session, item: RiskQueueItem, actor: str, supervisor: bool) -> None:
    """409 when another officer has taken the record: through this item, or through the record's
    newer item (a result sent to a superseded assessment closes that one too)."""
    items = session.scalars(
        select(RiskQueueItem).where(
            RiskQueueItem.kind == item.kind,
            RiskQueueItem.record_id == item.record_id,
            RiskQueueItem.status.in_(OPEN_STATUSES),
        )
    ).all()
    for taken in sorted(items, key=lambda i: i.assessment_id != item.assessment_id):  # this one first
        refuse_taken(taken, actor, supervisor=supervisor, doing="record its inspection result")


def _first_result(session: Session, *where: Any) -> RiskInspection | None:
    return session.scalars(
        select(RiskInspection).where(*where).order_by(RiskInspection.created_at).limit(1)
    ).first()


def _refuse_second_result(session: Session, item: RiskQueueItem, scope: str | None) -> None:
    """A record takes one result: another assessment of it that has one is a conflict. Two results
    would be two training labels for one record, perhaps opposite, each counted in the report."""
    other = _first_result(
        session,
        RiskInspection.kind == item.kind,
        RiskInspection.record_id == item.record_id,
        RiskInspection.assessment_id != item.assessment_id,
    )
    if other is None:
        return
    where = session.get(RiskQueueItem, other.assessment_id) if other.assessment_id else None
    named = where is not None and in_scope(where.office_code, scope)
    said = (
        f": inspection {other.inspection_id} (assessment {other.assessment_id}), outcome {other.outcome}, "
        f"inspected on {other.inspected_on.isoformat()}"
        if named
        else ""
    )
    raise WorkflowConflict(
        f"{item.subject_ref or item.record_id} already has an inspection result through another of its "
        f"assessments{said}",
        remedy="a record takes one result, whichever assessment it is sent to; if the recorded one is "
        "wrong, report it to an administrator with its inspection id",
        details={"assessment_id": item.assessment_id}
        | (
            {"inspection_id": other.inspection_id, "inspected_assessment_id": other.assessment_id}
            if named
            else {}
        ),
    )


def _close_other_items(session: Session, item: RiskQueueItem) -> list[str]:
    """Close the record's other open items (a result sent to a superseded assessment leaves the
    newer one open): an inspected record is not worked again, as a re-assessment does not queue
    it again (``enqueue``)."""
    others = session.scalars(
        select(RiskQueueItem).where(
            RiskQueueItem.kind == item.kind,
            RiskQueueItem.record_id == item.record_id,
            RiskQueueItem.assessment_id != item.assessment_id,
            RiskQueueItem.status.in_(OPEN_STATUSES),
        )
    ).all()
    for other in others:
        other.status = "done"
    return sorted(o.assessment_id for o in others)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
        # Set when the record was assessed again after this assessment: the result stays linked to
        # the assessment that selected the record, and the answer says it is not the latest.
        "superseded": item.newer_assessment_id is not None,
        "newer_assessment_id": item.newer_assessment_id,
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
    if row["revenue_raised"] is not None:  # rounded to the column's scale by check_inspection
        row["revenue_raised"] = Decimal(repr(row["revenue_raised"])).quantize(_REVENUE_STEP)
    table = pa.Table.from_pylist([row], schema=schema)
    lake.ensure_table(kind.ident, schema)
    lake.upsert(kind.ident, table, "record_id", batch_id=f"feedback-{inspection_id}")


__all__ = [
    "CLOCK_SKEW",
    "FEEDBACK_SOURCE",
    "FRAUD_OUTCOMES",
    "INSPECTION_ID_MAX",
    "OUTCOMES",
    "REVENUE_LIMIT",
    "InspectionInput",
    "Outcome",
    "check_inspection",
    "fraud_of",
    "inspection_problems",
    "record_inspection",
    "submit_inspection",
]
