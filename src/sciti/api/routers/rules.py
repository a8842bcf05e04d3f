"""Risk rules: list, read, draft, version, diff, submit, approve or reject (four eyes), retire, dry-run.

Bad rule text is a 422 whose details name the field, line and column; a body field an endpoint
does not know is a 422 naming it. Approval is refused (403, code four_eyes) to the author of the
version, whatever their roles, and submission (403, code not_author) to anyone but the author;
both refusals are audited as ``denied``.

A dry-run is a read of lake data on the caller's behalf (decision 0080): it runs under the caller's
policy (their office's rows), a condition naming personal fields needs ``unmask`` and a
``purpose`` (and ``personal.unmask``), one naming restricted fields needs ``intel.read`` (403, code
protected_fields, naming the fields), and every attempt is audited as ``rule.dry_run``. Writing or
approving a rule that names such fields needs the same permissions; kept dry-run figures are shown
only to readers who could have made them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from sciti.access import Principal, require
from sciti.api.deps import RowId, SessionDep, SettingsDep
from sciti.api.routers.sql import NO_NUL, client_of
from sciti.errors import InvalidInput
from sciti.ops import session_scope
from sciti.ops.rules_tables import Rule, RuleDryRun, RuleVersion
from sciti.risk import rules as rules_api
from sciti.risk.rules.columns import SUBJECT_KINDS, column_infos
from sciti.risk.rules.dryrun import MAX_DAYS

router = APIRouter(tags=["rules"])
Reader = Annotated[Principal, Depends(require("rules.read"))]
Writer = Annotated[Principal, Depends(require("rules.write"))]
Approver = Annotated[Principal, Depends(require("rules.approve"))]


class RuleIn(BaseModel):
    """A rule definition: YAML ``text`` as analysts write it, or the same as a JSON ``definition``."""

    # A field the endpoint does not know is refused (422 naming it), never ignored: a dry-run asked
    # with "since" must not quietly run over another window than the one meant.
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="The rule in YAML (see docs/risk-rules.md).")
    definition: dict[str, Any] | None = Field(None, description="The rule as a JSON object (same fields).")
    comment: str = Field("", description="Why this version: shown in the history and to the approver.")

    @model_validator(mode="after")
    def one_form(self) -> RuleIn:
        if self.text is None and self.definition is None:
            raise ValueError("the rule is missing: give it as `text` (YAML) or as `definition` (JSON)")
        if self.text is not None and self.definition is not None:
            raise ValueError("give the rule either as `text` (YAML) or as `definition` (JSON), not both")
        return self

    @property
    def source(self) -> str | dict[str, Any]:
        return self.text if self.text is not None else dict(self.definition or {})


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field("", description="Why: kept in the append-only decision log.")


class VersionOut(BaseModel):
    rule_id: str
    version: int
    kind: str
    status: str = Field(description="draft, submitted, approved, rejected, superseded or replaced.")
    enabled: bool = Field(description="False for a version that retires the rule.")
    author: str
    comment: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    text: str = Field(description="The definition in canonical YAML.")
    definition: dict[str, Any]


class VersionDetail(VersionOut):
    sql: str = Field(description="The condition compiled to SQL (NULL-safe).")
    scope_sql: str


class RuleOut(BaseModel):
    id: str
    kind: str
    title: str
    created_by: str
    created_at: datetime
    latest_version: int
    effective_version: int | None = Field(description="The approved version in effect, if any.")
    latest_status: str
    in_effect: bool = Field(description="An approved, enabled version is in effect.")


class RuleDetail(RuleOut):
    latest: VersionOut
    effective: VersionOut | None


class DecisionOut(BaseModel):
    version: int
    decision: str = Field(description="create, submit, approve, reject or supersede.")
    actor: str
    comment: str
    at: datetime


class HistoryOut(BaseModel):
    rule: RuleOut
    versions: list[VersionOut]
    decisions: list[DecisionOut]


class DiffOut(BaseModel):
    rule_id: str
    old: int
    new: int
    diff: str = Field(description="Unified diff of the canonical YAML ('' when identical).")


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(
        30, ge=1, le=MAX_DAYS, description="How many days back from the newest record (or `until`)."
    )
    until: date | None = Field(
        None, description="Last day of the window (default: newest record of the kind)."
    )
    unmask: bool = Field(
        False,
        description="The condition names personal fields: read them in clear (needs `personal.unmask` "
        "and a `purpose`; audited). Without it such a dry-run is refused.",
    )
    purpose: str | None = Field(
        None, max_length=500, pattern=NO_NUL, description="Why you unmask; recorded in the audit trail."
    )


class AdHocDryRunIn(RuleIn, DryRunIn):
    pass


class DryRunOut(BaseModel):
    rule_id: str
    version: int | None
    kind: str
    days: int
    window_from: str | None
    window_to: str | None
    records: int = Field(description="Records in the window (declarations, not goods items).")
    hits: int = Field(
        description="Records hit, in the unit of `records`: for declarations, the declarations with at "
        "least one goods item hit (before decision 0104: goods items, now `hit_rows`)."
    )
    hit_rows: int = Field(0, description="Rows hit: goods items for declarations; for other kinds = `hits`.")
    hit_subjects: int
    inspected_hits: int
    known_frauds: int
    hit_rate: float | None = Field(description="Known frauds / inspected subjects among the hits.")
    hits_per_day: list[dict[str, Any]]
    sample_ids: list[str] = Field(
        description="Up to 20 hit records, of the records you may read: the declaration's record id for "
        "declarations (as risk.assessments and the queue name them), never a goods item's."
    )
    path: str
    seconds: float
    office: str | None = Field(
        None, description="The figures cover only this office's records (your account's); null: all."
    )
    unmasked: list[str] = Field(
        default_factory=list, description="Personal fields the dry-run read in clear (with your purpose)."
    )
    in_scope: int = Field(
        0, description="Records in the window the rule's scope keeps (all of them when it has no scope)."
    )
    scope_kept: dict[str, int] = Field(
        default_factory=dict, description="Scope key (offices, ...) -> records of the window it alone keeps."
    )
    valid_from: str | None = Field(
        None, description="Start of the rule's validity (it does not limit the window: see `notes`)."
    )
    valid_to: str | None = Field(
        None, description="End of the rule's validity (it does not limit the window: see `notes`)."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What to know to read the figures: a scope that kept no record, a scope of offices "
        "your account cannot see, a validity period outside the window.",
    )
    note_codes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each of `notes`, line for line, as its code and the values it names, for saying it "
        "in another language: `{code, params}`. Codes: `scope_kept_none` (params records, kind, parts: "
        "[{key, values, kept}]), `offices_hidden` (office, offices, records, kind), `valid_outside` and "
        "`valid_part` (valid_from, valid_to: null when not set, window_from, window_to). Counts are "
        "numbers; offices, scope values and dates as written.",
    )
    history_as_of: str | None = Field(
        None,
        description="`record_date` when the rule names history features: they were taken as of each "
        "record's own date; null when it names none.",
    )


class StoredDryRunOut(BaseModel):
    version: int | None
    days: int
    actor: str
    at: datetime
    result: dict[str, Any] = Field(description="The figures ({} when withheld from you).")
    withheld: str | None = Field(
        None,
        description="Why the figures are not shown to you: made over another office's (or every "
        "office's) records, or the rule names fields your roles may not read in clear.",
    )


class ColumnOut(BaseModel):
    name: str
    type: str
    description: str
    derived: bool


def version_out(row: RuleVersion, cls: type[VersionOut] = VersionOut, **extra: Any) -> VersionOut:
    return cls(
        rule_id=row.rule_id,
        version=row.version,
        kind=row.kind,
        status=row.status,
        enabled=row.enabled,
        author=row.author,
        comment=row.comment,
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        text=row.text,
        definition=row.definition,
        **extra,
    )


def rule_out(session: Any, rule: Rule, cls: type[RuleOut] = RuleOut, **extra: Any) -> RuleOut:
    latest = rules_api.get_version(session, rule.id)
    effective = (
        rules_api.get_version(session, rule.id, rule.effective_version) if rule.effective_version else None
    )
    return cls(
        id=rule.id,
        kind=rule.kind,
        title=rule.title,
        created_by=rule.created_by,
        created_at=rule.created_at,
        latest_version=rule.latest_version,
        effective_version=rule.effective_version,
        latest_status=latest.status,
        in_effect=bool(effective and effective.enabled),
        **extra,
    )


@router.get("/rules", summary="List risk rules", response_model=list[RuleOut])
def list_rules(
    _: Reader,
    session: SessionDep,
    kind: Annotated[str | None, Query(description="Only rules of this record kind.")] = None,
) -> list[RuleOut]:
    return [rule_out(session, r) for r in rules_api.list_rules(session, kind)]


@router.get(
    "/rule-columns/{kind}",
    summary="Fields and features a rule of this record kind may use",
    response_model=list[ColumnOut],
)
def rule_columns(kind: str, _: Reader) -> list[ColumnOut]:
    if kind not in SUBJECT_KINDS:
        raise InvalidInput(
            f"{kind!r} is not a record kind with risk rules", remedy=f"use one of: {', '.join(SUBJECT_KINDS)}"
        )
    return [
        ColumnOut(name=c.name, type=c.type, description=c.description, derived=c.derived)
        for c in column_infos(kind).values()
    ]


@router.post(
    "/rules", summary="Create a rule (version 1, a draft)", response_model=VersionOut, status_code=201
)
def create_rule(body: RuleIn, who: Writer, session: SessionDep, settings: SettingsDep) -> VersionOut:
    try:
        row = rules_api.create_rule(session, body.source, actor=who.username, comment=body.comment)
    except rules_api.ProtectedFieldsRefused:
        rule_id = rules_api.parse_rule(body.source).id
        _audit_refusal(settings, who.username, rule_id, None, "create", "protected fields")
        raise
    return version_out(row)


@router.post(
    "/rules/dry-run",
    summary="Dry-run a definition that is not stored yet (as you: your office, your masks; audited)",
    response_model=DryRunOut,
)
async def dry_run_definition(
    body: AdHocDryRunIn, who: Writer, settings: SettingsDep, request: Request
) -> DryRunOut:
    definition = rules_api.parse_rule(body.source)
    result = await run_in_threadpool(
        rules_api.dry_run_as,
        settings,
        who,
        definition,
        body.days,
        until=body.until,
        unmask=body.unmask,
        purpose=body.purpose,
        source=client_of(request),
    )
    return DryRunOut(**result.to_dict())


@router.get(
    "/rules/{rule_id}", summary="One rule with its latest and effective versions", response_model=RuleDetail
)
def get_rule(rule_id: str, _: Reader, session: SessionDep) -> RuleOut:
    rule = rules_api.get_rule(session, rule_id)
    latest = rules_api.get_version(session, rule_id)
    effective = (
        rules_api.get_version(session, rule_id, rule.effective_version) if rule.effective_version else None
    )
    return rule_out(
        session,
        rule,
        RuleDetail,
        latest=version_out(latest),
        effective=version_out(effective) if effective else None,
    )


@router.post(
    "/rules/{rule_id}/versions",
    summary="Add a version (a draft; older pending versions are superseded)",
    response_model=VersionOut,
    status_code=201,
)
def add_version(
    rule_id: str, body: RuleIn, who: Writer, session: SessionDep, settings: SettingsDep
) -> VersionOut:
    try:
        row = rules_api.new_version(session, rule_id, body.source, actor=who.username, comment=body.comment)
    except rules_api.ProtectedFieldsRefused:
        _audit_refusal(settings, who.username, rule_id, None, "version", "protected fields")
        raise
    return version_out(row)


@router.get(
    "/rules/{rule_id}/versions/{version}",
    summary="One version, with its compiled SQL",
    response_model=VersionDetail,
)
def get_version(rule_id: str, version: RowId, _: Reader, session: SessionDep) -> VersionOut:
    row = rules_api.get_version(session, rule_id, version)
    compiled = rules_api.compile_rule(rules_api.parse_rule(row.text), row.version)
    return version_out(row, VersionDetail, sql=compiled.sql, scope_sql=compiled.scope_sql)


@router.get("/rules/{rule_id}/diff", summary="Differences between two versions", response_model=DiffOut)
def diff_versions(
    rule_id: str,
    _: Reader,
    session: SessionDep,
    old: Annotated[
        int | None, Query(alias="from", description="Older version (default: the one before `to`).")
    ] = None,
    new: Annotated[int | None, Query(alias="to", description="Newer version (default: the latest).")] = None,
) -> DiffOut:
    rule = rules_api.get_rule(session, rule_id)
    new = new or rule.latest_version
    old = old or max(1, new - 1)
    return DiffOut(rule_id=rule_id, old=old, new=new, diff=rules_api.diff(session, rule_id, old, new))


@router.get("/rules/{rule_id}/history", summary="Every version and every decision", response_model=HistoryOut)
def rule_history(rule_id: str, _: Reader, session: SessionDep) -> HistoryOut:
    h = rules_api.history(session, rule_id)
    return HistoryOut(
        rule=rule_out(session, h.rule),
        versions=[version_out(v) for v in h.versions],
        decisions=[
            DecisionOut(version=d.version, decision=d.decision, actor=d.actor, comment=d.comment, at=d.at)
            for d in h.decisions
        ],
    )


@router.post(
    "/rules/{rule_id}/versions/{version}/submit",
    summary="Submit a draft for approval",
    response_model=VersionOut,
)
def submit(rule_id: str, version: RowId, body: Decision, who: Writer, settings: SettingsDep) -> VersionOut:
    # Own transaction: a refused submission (not the author) must still leave its audit entry behind.
    try:
        with session_scope(settings.resolved_ops_db_url) as session:
            return version_out(
                rules_api.submit(session, rule_id, version, actor=who.username, comment=body.comment)
            )
    except rules_api.NotTheAuthor:
        _audit_refusal(settings, who.username, rule_id, version, "submit", "not the author")
        raise


@router.post(
    "/rules/{rule_id}/versions/{version}/approve",
    summary="Approve a submitted version (four eyes: not its author)",
    response_model=VersionOut,
)
def approve(rule_id: str, version: RowId, body: Decision, who: Approver, settings: SettingsDep) -> VersionOut:
    # Own transaction: a refused approval must still leave its audit entry behind.
    try:
        with session_scope(settings.resolved_ops_db_url) as session:
            return version_out(
                rules_api.approve(session, rule_id, version, actor=who.username, comment=body.comment)
            )
    except rules_api.FourEyesViolation:
        _audit_refusal(settings, who.username, rule_id, version, "approve")
        raise
    except rules_api.ProtectedFieldsRefused:
        _audit_refusal(settings, who.username, rule_id, version, "approve", "protected fields")
        raise


@router.post(
    "/rules/{rule_id}/versions/{version}/reject",
    summary="Reject a submitted version (four eyes: not its author)",
    response_model=VersionOut,
)
def reject(rule_id: str, version: RowId, body: Decision, who: Approver, settings: SettingsDep) -> VersionOut:
    try:
        with session_scope(settings.resolved_ops_db_url) as session:
            return version_out(
                rules_api.reject(session, rule_id, version, actor=who.username, comment=body.comment)
            )
    except rules_api.FourEyesViolation:
        _audit_refusal(settings, who.username, rule_id, version, "reject")
        raise


def _audit_refusal(
    settings: Any, actor: str, rule_id: str, version: int | None, decision: str, reason: str = "four eyes"
) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        rules_api.audit_refusal(
            session, actor=actor, rule_id=rule_id, version=version, decision=decision, reason=reason
        )


@router.post(
    "/rules/{rule_id}/retire",
    summary="Draft a version that switches the rule off (takes effect once approved)",
    response_model=VersionOut,
    status_code=201,
)
def retire(rule_id: str, body: Decision, who: Writer, session: SessionDep) -> VersionOut:
    return version_out(rules_api.retire(session, rule_id, actor=who.username, comment=body.comment))


@router.post(
    "/rules/{rule_id}/versions/{version}/dry-run",
    summary="Dry-run a stored version over the last N days of lake data (as you; figures are kept)",
    response_model=DryRunOut,
)
def dry_run_version(
    rule_id: str,
    version: int,
    body: DryRunIn,
    who: Writer,
    settings: SettingsDep,
    session: SessionDep,
    request: Request,
) -> DryRunOut:
    result = rules_api.dry_run_version(
        settings,
        session,
        rule_id,
        version,
        body.days,
        principal=who,
        until=body.until,
        unmask=body.unmask,
        purpose=body.purpose,
        source=client_of(request),
    )
    return DryRunOut(**result.to_dict())


@router.get(
    "/rules/{rule_id}/dry-runs",
    summary="Dry-runs made of this rule's versions, newest first (figures only where you could make them)",
    response_model=list[StoredDryRunOut],
)
def list_dry_runs(rule_id: str, who: Reader, session: SessionDep) -> list[StoredDryRunOut]:
    rules_api.get_rule(session, rule_id)
    rows = session.scalars(
        select(RuleDryRun).where(RuleDryRun.rule_id == rule_id).order_by(RuleDryRun.id.desc()).limit(100)
    )
    fields: dict[int | None, dict[str, list[str]]] = {}
    out = []
    for r in rows:
        if r.version not in fields:
            fields[r.version] = rules_api.protected_fields(
                rules_api.parse_rule(rules_api.get_version(session, rule_id, r.version).text)
            )
        result, withheld = rules_api.shown_dry_run(r.result, fields[r.version], who)
        out.append(
            StoredDryRunOut(
                version=r.version, days=r.days, actor=r.actor, at=r.at, result=result, withheld=withheld
            )
        )
    return out
