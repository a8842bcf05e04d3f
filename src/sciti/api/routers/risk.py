"""Risk engine over HTTP: real-time assessment, the officers' queue, overrides, feedback, report.

The queue, taking, overrides and inspection results are scoped to the caller's office when its
account has one: another office's item answers 404 exactly like an unknown id (need-to-know
includes not knowing which ids exist), and the attempt is audited as denied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from sciti.access import Principal, audit, current_principal, demand, require
from sciti.api.deps import LakeDep, SessionDep, SettingsDep
from sciti.errors import InvalidInput
from sciti.ops import session_scope
from sciti.risk.engine import (
    InspectionInput,
    OutsideOffice,
    RiskService,
    assign,
    hit_report,
    list_queue,
    override,
    service_for,
    submit_inspection,
)
from sciti.risk.engine.feedback import INSPECTION_ID_MAX, REVENUE_LIMIT, inspection_problems
from sciti.risk.engine.inputs import records_of, request_models
from sciti.risk.engine.workqueue import reassign, release
from sciti.risk.lanes import LANES
from sciti.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Nothing starts here (the engine loads on first assessment); stopping flushes what is buffered."""
    yield
    svc = getattr(app.state, "risk_service", None)
    if svc is not None:
        app.state.risk_service = None
        await run_in_threadpool(svc.stop)


router = APIRouter(prefix="/risk", tags=["risk"], lifespan=lifespan)
Assessing = Annotated[Principal, Depends(require("risk.assess"))]
QueueReader = Annotated[Principal, Depends(require("risk.queue"))]
Worker = Annotated[Principal, Depends(require("risk.work"))]
Supervisor = Annotated[Principal, Depends(require("risk.supervise"))]
Reporter = Annotated[Principal, Depends(require("risk.report"))]
Lane = Literal["green", "blue", "yellow", "red"]

_REQUESTS = request_models()
AssessRequest = Annotated[
    _REQUESTS[0] | _REQUESTS[1] | _REQUESTS[2] | _REQUESTS[3] | _REQUESTS[4],  # type: ignore[valid-type]
    Field(discriminator="kind"),
]


class FactorOut(BaseModel):
    feature: str
    value: Any
    contribution: float = Field(description="Effect on the model's log-odds (TreeSHAP).")
    text: str
    # A smoothed rate's evidence (decision 0115): absent for other features.
    inspections: int | None = Field(None, description="Past inspections of the rate's group (0: never).")
    frauds: int | None = Field(None, description="Of them, how many found fraud (critical when `critical`).")
    critical: bool | None = Field(None, description="The rate counts critical frauds only.")
    unit: str | None = Field(None, description="What one inspection counts: declaration or item.")
    overall: float | None = Field(None, description="The overall rate the estimate is pulled toward.")
    pulled: bool | None = Field(None, description="Few inspections: the estimate leans on `overall`.")
    # The template that made `text` and the record's values it names (decision 0118).
    template: str | None = Field(
        None, description="The feature's template that made `text`: explain, explain_no or explain_unseen."
    )
    named: dict[str, Any] | None = Field(
        None, description="The record's values that template names besides `value` (null: unknown)."
    )


class ReasonCodeOut(BaseModel):
    """One line of ``reasons`` as a stable code and its values, to say it in another language."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(
        description="rule_hit {rule, version, weight, lane, text: the rule's own reason as written}, "
        "unknown_code {field, value}, model {version, score, and when calibrated share, unit, period, "
        "period_start, period_end}, no_model {kind, why, cause: rules_only | failed | null}, "
        "factor {feature, value, contribution; a rate also inspections, frauds, critical, unit, overall, "
        "pulled; when a template made its sentence also template, named}, sample {share}, "
        "red_capacity {office, day, places, lane}. "
        "A declaration's line that names a goods item also has `item` (its number)."
    )


class AssessmentOut(BaseModel):
    assessment_id: str
    kind: str
    record_id: str
    subject_ref: str
    office_code: str | None
    score: float = Field(description="0-100: the higher of rule_score and model_score.")
    rule_score: float = Field(description="Sum of the weights of the rules that hit, capped at 100.")
    model_score: float | None = Field(
        description="100 x the champion model's probability; null without a model."
    )
    risk_lane: str = Field(description="Lane from the score and lane rules alone.")
    lane: str = Field(description="Lane to apply: after the compliance sample and red-lane capacity.")
    sampled: bool = Field(description="In the random compliance sample.")
    reasons: list[str] = Field(description="Plain-language explanation: rule reasons, model factors, notes.")
    rule_ids: list[str]
    model_version: str | None = Field(
        description="Null when no model scored (none trained, or failed to load)."
    )
    factors: list[FactorOut]
    unknown_codes: list[str] = Field(description="Fields whose code is unknown (scored with that indicator).")
    rules_version: str
    reference_snapshot: str | None
    assessed_at: datetime
    items: list[dict[str, Any]] = Field(description="Per goods item (declarations with several items).")
    reason_codes: list[ReasonCodeOut] = Field(
        description="The reasons line for line (reason_codes[i] is reasons[i]) as codes and values."
    )


class AssessResponse(BaseModel):
    assessments: list[AssessmentOut]


@router.post("/assess", response_model=AssessResponse, summary="Assess one record or a batch in real time")
async def assess(
    request: Request,
    settings: SettingsDep,
    principal: Assessing,
    body: Annotated[AssessRequest, Body()],
) -> Response:
    """Send `{"kind": ..., "record": {...}}` or `{"kind": ..., "records": [...]}`. Each answer is
    stored (``risk.assessments``, via a durable buffer) before it is returned."""
    svc: RiskService | None = getattr(request.app.state, "risk_service", None)
    if svc is None:  # loading rules and models reads the lake: not on the event loop
        svc = await run_in_threadpool(service_for, request.app.state, settings)
    records = records_of(body)
    kind: str = getattr(body, "kind")  # noqa: B009 (every member of the request union has it)
    answers = [a.to_dict() for a in await svc.assess_async(kind, records)]
    # Serialised here: the answer is ours and already checked; a second pass through the
    # response model would cost this real-time endpoint about as much as the rules do.
    return Response(
        orjson.dumps({"assessments": answers}, option=orjson.OPT_SERIALIZE_NUMPY, default=str),
        media_type="application/json",
    )


class QueueItemOut(BaseModel):
    assessment_id: str
    kind: str
    record_id: str
    subject_ref: str
    office_code: str | None
    score: float
    lane: str
    assigned_lane: str
    lane_rules: list[str] = Field(
        description="Lane rules that hit and named the engine's lane (assigned_lane): the lane came from "
        "them, whatever the score (a watch-list rule sends a record to red with a score of 0)."
    )
    sampled: bool
    reasons: list[str]
    reason_codes: list[ReasonCodeOut] | None = Field(
        None,
        description="The reasons as codes and values, line for line; null on items queued before "
        "codes were kept.",
    )
    rule_ids: list[str]
    model_version: str | None
    assessed_at: datetime
    status: str
    assigned_to: str | None
    assigned_at: datetime | None
    overrides: list[dict[str, Any]] | None = None
    newer_assessment_id: str | None = Field(
        None, description="Set when the record was assessed again after this item was queued."
    )


class QueuePageOut(BaseModel):
    items: list[QueueItemOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


@router.get("/queue", response_model=QueuePageOut, summary="Flagged records, most urgent lane first")
def queue(
    session: SessionDep,
    principal: QueueReader,
    kind: str | None = None,
    office: str | None = None,
    lane: Annotated[Lane | None, Query()] = None,
    status: Annotated[Literal["open", "assigned", "done", "superseded", "any"] | None, Query()] = None,
    mine: bool = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Red items first, then yellow, then blue (post-clearance audit), then any other lane; within
    a lane, highest score first. Open and taken items by default (`status` for others, `any` for
    every status). An account bound to an office sees that office's items only; `office` filters
    within what the caller may see."""
    page = list_queue(
        session,
        scope=principal.office_code,
        kind=kind,
        office=office,
        lane=lane,
        status=status,
        assigned_to=principal.username if mine else None,
        cursor=cursor,
        limit=limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@contextmanager
def _outside_office_audited(
    settings: Settings, request: Request, principal: Principal, action: str, assessment_id: str
) -> Iterator[None]:
    """Audit, as denied, work asked on another office's item; the 404 goes on unchanged.

    In its own transaction: the request's own is rolled back with the error."""
    try:
        yield
    except OutsideOffice:
        with session_scope(settings.resolved_ops_db_url) as session:
            audit(
                session,
                actor=principal.username,
                action=action,
                target=f"assessment:{assessment_id}",
                source=request.client.host if request.client else None,
                outcome="denied",
                details={"reason": "another office's item", "office": principal.office_code},
            )
        raise


@router.post("/queue/{assessment_id}/assign", response_model=QueueItemOut, summary="Take a flagged record")
def take(
    assessment_id: str, request: Request, settings: SettingsDep, session: SessionDep, principal: Worker
) -> dict[str, Any]:
    with _outside_office_audited(settings, request, principal, "risk.assign", assessment_id):
        return assign(session, assessment_id, actor=principal.username, scope=principal.office_code)


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=2000, description="Why (kept in the audit trail).")


@router.post(
    "/queue/{assessment_id}/release",
    response_model=QueueItemOut,
    summary="Give a taken record back to the queue",
    responses={409: {"description": "Not taken, closed, or taken by someone else (you are no supervisor)."}},
)
def give_back(
    assessment_id: str,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    principal: Worker,
    body: Annotated[ReleaseIn | None, Body()] = None,
) -> dict[str, Any]:
    """Its taker, or a supervisor (`risk.supervise`) for a record someone else has taken."""
    with _outside_office_audited(settings, request, principal, "risk.release", assessment_id):
        return release(
            session,
            assessment_id,
            actor=principal.username,
            scope=principal.office_code,
            supervisor=principal.can("risk.supervise"),
            reason=body.reason if body else None,
        )


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=150, description="The account to work the record.")
    reason: str | None = Field(None, max_length=2000, description="Why (kept in the audit trail).")


@router.post(
    "/queue/{assessment_id}/reassign",
    response_model=QueueItemOut,
    summary="Give a record, taken or not, to an officer (supervisors)",
    responses={
        409: {"description": "Closed, superseded, or already that officer's."},
        422: {"description": "`to` is no active account that may work this record."},
    },
)
def hand_over(
    assessment_id: str,
    body: ReassignIn,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    principal: Supervisor,
) -> dict[str, Any]:
    """`to` must hold `risk.work` and, when bound to an office, be of the record's office."""
    with _outside_office_audited(settings, request, principal, "risk.reassign", assessment_id):
        return reassign(
            session,
            assessment_id,
            to=body.to,
            actor=principal.username,
            scope=principal.office_code,
            reason=body.reason,
        )


class OverrideIn(BaseModel):
    lane: Lane
    reason: str = Field(min_length=3, description="Why the lane changes (kept with the override).")


@router.post(
    "/queue/{assessment_id}/override",
    response_model=QueueItemOut,
    summary="Change a record's lane",
    responses={409: {"description": "Already in that lane, superseded, or taken by someone else."}},
)
def change_lane(
    assessment_id: str,
    body: OverrideIn,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    principal: Worker,
) -> dict[str, Any]:
    """A record someone has taken is changed by them or by a supervisor (`risk.supervise`)."""
    with _outside_office_audited(settings, request, principal, "risk.override", assessment_id):
        return override(
            session,
            assessment_id,
            lane=body.lane,
            reason=body.reason,
            actor=principal.username,
            scope=principal.office_code,
            supervisor=principal.can("risk.supervise"),
        )


class InspectionIn(BaseModel):
    """An inspection result. Training takes its labels from these, so what cannot be stored, or
    contradicts itself, is refused field by field (docs/decisions/0089)."""

    model_config = ConfigDict(extra="forbid")

    assessment_id: str
    outcome: Literal["no_discrepancy", "discrepancy", "seizure", "referred", "not_performed"]
    inspected_on: date = Field(
        description="The day of the control: not in the future, not before the assessment "
        "(a day of slack either way for time zones)."
    )
    inspection_type: Literal["documentary", "physical", "scan", "canine", "sample", "audit", "other"] = (
        "physical"
    )
    fraud: bool | None = Field(
        None,
        description="Default: from fraud_severity when sent, else true for discrepancy or seizure. "
        "Never true for no_discrepancy or not_performed.",
    )
    fraud_severity: int | None = Field(None, ge=0, le=2, description="0 none, 1 fraud, 2 critical fraud.")
    findings: str | None = None
    discrepancy_type: str | None = Field(None, description="Not with no_discrepancy or not_performed.")
    revenue_raised: float | None = Field(
        None,
        ge=0,
        lt=REVENUE_LIMIT,
        allow_inf_nan=False,
        description="Additional duties, taxes and penalties: 0 or more, below the lake column's limit, "
        "kept to its 4 decimal places. None with no_discrepancy or not_performed.",
    )
    revenue_currency: str | None = None
    inspection_id: str | None = Field(
        None, max_length=INSPECTION_ID_MAX, description="Your reference; one is made when left out."
    )

    @model_validator(mode="after")
    def _consistent(self) -> InspectionIn:
        problems = inspection_problems(InspectionInput(**self.model_dump()))
        if problems:
            errors = [
                InitErrorDetails(type=PydanticCustomError("inconsistent", why), loc=(field,), input=None)
                for field, why in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


@router.post(
    "/inspections",
    status_code=201,
    summary="Record an inspection result (feedback)",
    responses={
        200: {"description": "The same result was already recorded (a retry): the stored one, unchanged."},
        409: {
            "description": "A result is already recorded for this assessment, or for its record; or "
            "another officer has taken the record (only they or a supervisor record its result)."
        },
        422: {"description": "A field cannot be stored, or contradicts the outcome or the assessment."},
    },
)
def inspection(
    body: InspectionIn,
    request: Request,
    response: Response,
    settings: SettingsDep,
    session: SessionDep,
    lake: LakeDep,
    principal: Worker,
) -> dict[str, Any]:
    """One result per assessment, and per record. Sending the very same result again answers 200
    with the stored one (a retry stores nothing twice); a different result for an assessment that
    has one, or for a record that has one through another assessment, is 409. A result for a
    superseded assessment is recorded and says so (`superseded`, `newer_assessment_id`). An
    office-bound account records results for its own office's items only. A record someone has
    taken takes its result from them or from a supervisor (`risk.supervise`)."""
    data = InspectionInput(**body.model_dump())
    with _outside_office_audited(settings, request, principal, "risk.inspection", body.assessment_id):
        try:
            stored, created = submit_inspection(
                session,
                lake,
                data,
                actor=principal.username,
                scope=principal.office_code,
                supervisor=principal.can("risk.supervise"),
            )
        except InvalidInput as exc:  # e.g. a date before the assessment: one 422 shape for every field
            fields = exc.details.get("fields")
            if not fields:
                raise
            raise RequestValidationError(
                [{"loc": ("body", f["field"]), "msg": f["problem"], "type": "inconsistent"} for f in fields]
            ) from None
    if not created:
        response.status_code = 200
    return stored


@router.get("/report", summary="Hit rates per rule and per model over time")
def report(
    settings: SettingsDep,
    principal: Reporter,
    since: date | None = None,
    until: date | None = None,
    period: Literal["day", "week", "month"] = "month",
    kind: str | None = None,
) -> dict[str, Any]:
    """Of the caller's office when the account is bound to one (decision 0090): the office comes
    from the account only, so no parameter widens it; an account without an office sees all."""
    office = principal.office_code
    return hit_report(settings, since=since, until=until, period=period, kind=kind, office=office)


async def _status_reader(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Readers of the risk reports, or those who run the platform (``metrics``: monitoring,
    administrators): the engine's state is versions, counts and model alerts, no record data."""
    if not principal.can("metrics"):
        demand(principal, "risk.report")
    return principal


@router.get(
    "/status",
    summary="Engine state: rules, models (and alerts), buffered assessments (risk.report or metrics)",
)
def status(request: Request, principal: Annotated[Principal, Depends(_status_reader)]) -> dict[str, Any]:
    svc = getattr(request.app.state, "risk_service", None)
    if svc is None:
        return {"started": False, "lanes": list(LANES)}
    return {"started": True, **svc.status()}
