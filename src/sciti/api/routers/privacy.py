"""Personal-data protection over HTTP (``privacy.manage``): retention rules and runs, the consent
register and cross-boundary transfer rules, with their check functions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from sciti.access import Principal, require
from sciti.access.privacy import (
    RetentionRun as RetentionRunResult,
)
from sciti.access.privacy import (
    consent_allows,
    list_consents,
    list_transfer_rules,
    record_consent,
    remove_transfer_rule,
    retention_rules,
    run_retention,
    set_retention,
    set_transfer_rule,
    transfer_allowed,
    unset_retention,
    withdraw_consent,
)
from sciti.api.deps import LakeDep, RowId, SessionDep, SettingsDep

router = APIRouter(tags=["privacy"])
Manager = Annotated[Principal, Depends(require("privacy.manage"))]


def _source(request: Request) -> str:
    return request.client.host if request.client else "api"


# -- retention -----------------------------------------------------------------------------------
class RetentionRuleOut(BaseModel):
    kind: str
    days: int
    date_field: str
    basis: str
    origin: str = Field(description="default (shipped rules) or override (this instance)")
    table: str


class RetentionSet(BaseModel):
    days: int = Field(ge=1)
    date_field: str | None = Field(None, description="Date the period counts from; default as shipped.")
    reason: str = Field("", max_length=2000)


class RetentionRun(BaseModel):
    kinds: list[str] | None = Field(None, description="Only these kinds; default every rule.")


class RetentionResultOut(BaseModel):
    kind: str
    table: str
    cutoff: str
    rows_deleted: int
    delete_snapshot: int | None
    expired_snapshots: list[int]
    files_removed: int
    snapshots_left: int
    kept_by_refs: list[str]
    copies: dict[str, int] = Field(
        default_factory=dict, description="Rows deleted from each copy of the records (risk.assessments ...)."
    )
    copy_files_removed: int = 0


class RetentionRunOut(BaseModel):
    tables: list[RetentionResultOut]
    files: dict[str, Any] | None = Field(
        None,
        description="Received files: deleted with the last of their rows, or kept (held_until) while "
        "some of their rows are inside their period.",
    )


@router.get("/privacy/retention", summary="Retention rules in force", response_model=list[RetentionRuleOut])
def get_retention(session: SessionDep, settings: SettingsDep, principal: Manager) -> list[RetentionRuleOut]:
    return [RetentionRuleOut(**r.__dict__) for r in retention_rules(settings, session)]


@router.put(
    "/privacy/retention/{kind}", summary="Override a kind's retention period", response_model=RetentionRuleOut
)
def put_retention(
    kind: str, body: RetentionSet, session: SessionDep, settings: SettingsDep, principal: Manager
) -> RetentionRuleOut:
    set_retention(
        session, kind, body.days, actor=principal.username, date_field=body.date_field, reason=body.reason
    )
    session.flush()
    rule = {r.kind: r for r in retention_rules(settings, session)}[kind]
    return RetentionRuleOut(**rule.__dict__)


@router.delete("/privacy/retention/{kind}", summary="Back to the shipped retention period", status_code=204)
def delete_retention(kind: str, session: SessionDep, principal: Manager) -> None:
    unset_retention(session, kind, actor=principal.username)


@router.post(
    "/privacy/retention/run",
    summary="Run retention now: delete old rows from the lake, expire snapshots, remove files",
    response_model=RetentionRunOut,
)
async def post_retention_run(
    body: RetentionRun, request: Request, settings: SettingsDep, lake: LakeDep, principal: Manager
) -> RetentionRunOut:
    def run() -> RetentionRunResult:
        return run_retention(
            settings, lake, actor=principal.username, kinds=body.kinds, source=_source(request)
        )

    done = await run_in_threadpool(run)
    files = done.objects.details() if done.objects is not None else None
    return RetentionRunOut(tables=[RetentionResultOut(**r.__dict__) for r in done], files=files)


# -- consent register --------------------------------------------------------------------------------
class ConsentIn(BaseModel):
    subject_ref: str = Field(
        min_length=1, max_length=200, description="The person, e.g. P:<passport number>."
    )
    holder: str = Field(min_length=1, max_length=100, description="Department holding the data.")
    recipient: str = Field(min_length=1, max_length=100, description="Department that may use it.")
    purpose: str = Field(min_length=1, max_length=200)
    kinds: list[str] = Field(default_factory=list, description="Record kinds covered; empty for all.")
    valid_from: date | None = None
    valid_until: date
    evidence: str = Field("", max_length=2000, description="Where the signed consent is kept.")


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subject_ref: str
    holder: str
    recipient: str
    purpose: str
    kinds: list[str]
    valid_from: date
    valid_until: date
    evidence: str
    recorded_at: datetime
    recorded_by: str
    withdrawn_at: datetime | None
    withdrawn_by: str | None


class ConsentCheck(BaseModel):
    subject_ref: str
    holder: str
    recipient: str
    purpose: str
    kind: str | None = None
    on: date | None = None


class CheckOut(BaseModel):
    allowed: bool
    reason: str = ""
    refused_fields: list[str] = Field(default_factory=list)


@router.get(
    "/privacy/consents", summary="The consent register, newest first", response_model=list[ConsentOut]
)
def get_consents(session: SessionDep, principal: Manager, subject_ref: str | None = None) -> list[ConsentOut]:
    return [ConsentOut.model_validate(c) for c in list_consents(session, subject_ref=subject_ref)]


@router.post("/privacy/consents", summary="Record a consent", response_model=ConsentOut, status_code=201)
def post_consent(body: ConsentIn, session: SessionDep, principal: Manager) -> ConsentOut:
    row = record_consent(session, **body.model_dump(), actor=principal.username)
    return ConsentOut.model_validate(row)


@router.post(
    "/privacy/consents/{consent_id}/withdraw", summary="Withdraw a consent", response_model=ConsentOut
)
def post_withdraw(consent_id: RowId, session: SessionDep, principal: Manager) -> ConsentOut:
    row = withdraw_consent(session, consent_id, actor=principal.username)
    session.flush()
    return ConsentOut.model_validate(row)


@router.post("/privacy/consents/check", summary="Does a consent allow this use?", response_model=CheckOut)
def post_consent_check(body: ConsentCheck, session: SessionDep, principal: Manager) -> CheckOut:
    return CheckOut(allowed=consent_allows(session, **body.model_dump()))


# -- transfer rules --------------------------------------------------------------------------------
class TransferIn(BaseModel):
    fields: list[str] = Field(min_length=1, description="Fields of the kind that may be sent.")
    legal_basis: str = Field("", max_length=2000)
    valid_until: date | None = None


class TransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    partner: str
    fields: list[str]
    legal_basis: str
    valid_until: date | None
    set_at: datetime
    set_by: str


class TransferCheck(BaseModel):
    kind: str
    partner: str
    fields: list[str]
    on: date | None = None


@router.get(
    "/privacy/transfer-rules", summary="Cross-boundary transfer rules", response_model=list[TransferOut]
)
def get_transfer_rules(
    session: SessionDep, principal: Manager, partner: str | None = None
) -> list[TransferOut]:
    return [TransferOut.model_validate(r) for r in list_transfer_rules(session, partner=partner)]


@router.put(
    "/privacy/transfer-rules/{partner}/{kind}",
    summary="Allow a record kind (with these fields) to go to a partner",
    response_model=TransferOut,
)
def put_transfer_rule(
    partner: str, kind: str, body: TransferIn, session: SessionDep, principal: Manager
) -> TransferOut:
    row = set_transfer_rule(
        session, kind=kind, partner=partner, **body.model_dump(), actor=principal.username
    )
    return TransferOut.model_validate(row)


@router.delete("/privacy/transfer-rules/{partner}/{kind}", summary="Remove a transfer rule", status_code=204)
def delete_transfer_rule(partner: str, kind: str, session: SessionDep, principal: Manager) -> None:
    remove_transfer_rule(session, kind=kind, partner=partner, actor=principal.username)


@router.post(
    "/privacy/transfer-rules/check", summary="May these fields go to this partner?", response_model=CheckOut
)
def post_transfer_check(body: TransferCheck, session: SessionDep, principal: Manager) -> CheckOut:
    decision = transfer_allowed(session, body.kind, body.partner, body.fields, on=body.on)
    return CheckOut(
        allowed=decision.allowed, reason=decision.reason, refused_fields=list(decision.refused_fields)
    )
