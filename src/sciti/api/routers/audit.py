"""The audit trail over HTTP: read and verify it (``audit.read``). Nothing here changes an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from sciti.access import Principal, audit, list_entries, require, verify
from sciti.api.deps import PagingDep, SessionDep

router = APIRouter(tags=["audit"])
_TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: refuse it as bad input, not a server error


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    purpose: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    limit: int
    offset: int


class VerificationOut(BaseModel):
    ok: bool
    entries: int = Field(description="Entries checked, from the first.")
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = Field(None, description="The first entry that does not check out.")
    problem: str | None = Field(None, description="What is wrong there: modified, missing, reordered ...")


@router.get("/audit", summary="List audit entries, newest first", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    page: PagingDep,
    principal: Annotated[Principal, Depends(require("audit.read"))],
    actor: Annotated[str | None, Query(max_length=200, pattern=_TEXT, description="Only this actor.")] = None,
    action: Annotated[
        str | None,
        Query(max_length=100, pattern=_TEXT, description="Only this action; 'rule.' for all rule.* actions."),
    ] = None,
    since: Annotated[datetime | None, Query(description="Only entries at or after this time.")] = None,
    until: Annotated[datetime | None, Query(description="Only entries before this time.")] = None,
) -> AuditPage:
    entries = list_entries(
        session, actor=actor, action=action, since=since, until=until, limit=page.limit, offset=page.offset
    )
    return AuditPage(
        entries=[AuditEntryOut(**e.__dict__) for e in entries], limit=page.limit, offset=page.offset
    )


@router.post(
    "/audit/verify", summary="Verify the hash chain of the audit trail", response_model=VerificationOut
)
def verify_audit(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("audit.read"))],
) -> VerificationOut:
    result = verify(session)
    audit(
        session,
        actor=principal.username,
        action="audit.verify",
        source=request.client.host if request.client else "api",
        outcome="ok" if result.ok else "broken",
        details={"entries": result.entries, "first_bad_seq": result.first_bad_seq, "problem": result.problem},
    )
    return VerificationOut(**result.__dict__)
