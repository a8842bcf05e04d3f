"""Quarantined records: list, inspect, correct and re-submit.

Showing one record (its raw content) and re-submitting go through the shared functions of
``sciti.acquire.quarantine``, which audit them under the caller's account (decision 0099); the list
gives where and why, never the raw content.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from sciti.access import Principal, require
from sciti.api.deps import PagingDep, RowId, SessionDep, SettingsDep
from sciti.api.errors import NotAvailable
from sciti.api.routers.sql import client_of
from sciti.errors import NotFound
from sciti.ops import QuarantineRecord, session_scope

router = APIRouter(tags=["quarantine"])
log = logging.getLogger("sciti.api")
Reader = Annotated[Principal, Depends(require("quarantine.read"))]
Resubmitter = Annotated[Principal, Depends(require("quarantine.resubmit"))]


class QuarantineOut(BaseModel):
    id: int
    batch_id: str
    connector: str
    source: str
    locator: str = Field(
        description="Where in the source: file and line, XML path, EDIFACT segment, message id."
    )
    field: str | None
    reason: str
    status: str = Field(description="open, resubmitted or discarded.")
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resubmit_batch_id: str | None


class QuarantineDetail(QuarantineOut):
    raw: str | None = Field(description="The content as received (the thing to correct).")
    details: dict[str, Any]


class QuarantinePage(BaseModel):
    items: list[QuarantineOut]
    total: int
    limit: int
    offset: int


class Resubmission(BaseModel):
    corrected: str = Field(
        description="The corrected content, in the same format as `raw`. A record that is one row, "
        "declaration or message of its unit is corrected by one record (a CSV row with its header); "
        "more is refused (422 `correction_mismatch`): new records go through the connector."
    )


def _out(rec: QuarantineRecord, cls: type[QuarantineOut] = QuarantineOut, **extra: Any) -> QuarantineOut:
    names = QuarantineOut.model_fields.keys()
    return cls(**{n: getattr(rec, n) for n in names}, **extra)


@router.get("/quarantine", summary="List quarantined records, newest first", response_model=QuarantinePage)
def list_quarantine(
    _: Reader,
    session: SessionDep,
    page: PagingDep,
    connector: Annotated[str | None, Query(description="Only this connector.")] = None,
    batch_id: Annotated[str | None, Query(description="Only this batch.")] = None,
    status: Annotated[
        str | None, Query(description="Only this status: open, resubmitted, discarded.")
    ] = None,
) -> QuarantinePage:
    query = select(QuarantineRecord)
    for column, value in (
        (QuarantineRecord.connector, connector),
        (QuarantineRecord.batch_id, batch_id),
        (QuarantineRecord.status, status),
    ):
        if value:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(QuarantineRecord.id.desc()).limit(page.limit).offset(page.offset))
    return QuarantinePage(items=[_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


def _load(session: Any, record_id: int) -> QuarantineRecord:
    rec = session.get(QuarantineRecord, record_id)
    if rec is None:
        raise NotFound(f"no quarantined record {record_id}", remedy="list them with GET /api/v1/quarantine")
    return rec


@router.get(
    "/quarantine/{record_id}",
    summary="One quarantined record with its raw content",
    response_model=QuarantineDetail,
)
def get_quarantine(
    record_id: RowId, principal: Reader, settings: SettingsDep, request: Request
) -> QuarantineOut:
    """The raw content as received (it may hold personal data): the read is audited."""
    from sciti.acquire.quarantine import show_quarantine

    entry = show_quarantine(settings, record_id, user=principal.username, source=client_of(request))
    return QuarantineDetail(**{**entry, "details": entry.get("details") or {}})


@router.post("/quarantine/{record_id}/resubmit", summary="Submit a corrected version of a quarantined record")
async def resubmit(
    record_id: RowId, body: Resubmission, principal: Resubmitter, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Runs the correction through the connector's own checks; the outcome (stored, or quarantined
    again with a new reason) is a new batch that points back at this record."""

    def _exists() -> None:
        with session_scope(settings.resolved_ops_db_url) as session:
            _load(session, record_id)

    await run_in_threadpool(_exists)  # 404 before anything else
    fn = getattr(importlib.import_module("sciti.acquire"), "resubmit", None)
    if fn is None:
        raise NotAvailable(
            "re-submission is not available in this build", remedy="use `sciti quarantine resubmit`"
        )
    result = await run_in_threadpool(
        fn, settings, record_id, body.corrected, principal.username, source=client_of(request)
    )
    log.info("quarantine resubmitted", extra={"quarantine_id": record_id, "user": principal.username})
    return {"quarantine_id": record_id, "result": _plain(result)}


def _plain(value: Any) -> Any:
    """Whatever the acquisition layer returns (a batch row, a dataclass, an id) as JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable_encoder(dataclasses.asdict(value))
    table = getattr(value, "__table__", None)
    if table is not None:  # an ORM row
        return jsonable_encoder({c.name: getattr(value, c.key, None) for c in table.columns})
    return jsonable_encoder(value)
