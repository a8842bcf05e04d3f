"""Acquisition batches from the operational batch registry: received = stored + quarantined +
already_stored (rows or units whose records were all stored before with the same values)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from sciti.access import Principal, require
from sciti.api.deps import PagingDep, SessionDep
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord

router = APIRouter(tags=["batches"])
Reader = Annotated[Principal, Depends(require("batches.read"))]


class BatchOut(BaseModel):
    id: str
    connector: str
    source: str
    transport: str
    unit: str = Field(description="What the batch was: a file path, a message id, an extraction window.")
    status: str = Field(description="running, committed or failed.")
    received: int
    stored: int
    quarantined: int
    already_stored: int = Field(
        description="Rows or units whose records were all stored before with the same values (a file "
        "sent again): counted, neither stored again nor quarantined."
    )
    replaced: int = Field(
        0,
        description="Of the stored: rows that replaced a record stored before with other values "
        "(a connector with `on_change: replace`); the earlier version stays in the lake's history.",
    )
    reconciled: bool = Field(description="received == stored + quarantined + already_stored")
    tables: dict[str, Any] = Field(description="Lake table -> rows stored in it.")
    resubmission_of: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class BatchDetail(BatchOut):
    quarantine_open: int = Field(description="Quarantined records of this batch not yet resolved.")


class BatchPage(BaseModel):
    items: list[BatchOut]
    total: int
    limit: int
    offset: int


def batch_out(batch: Batch, cls: type[BatchOut] = BatchOut, **extra: Any) -> BatchOut:
    return cls(
        id=batch.id,
        connector=batch.connector,
        source=batch.source,
        transport=batch.transport,
        unit=batch.unit,
        status=batch.status,
        received=batch.received,
        stored=batch.stored,
        quarantined=batch.quarantined,
        already_stored=batch.already_stored,
        replaced=batch.replaced,
        reconciled=batch.reconciled,
        tables=batch.tables or {},
        resubmission_of=batch.resubmission_of,
        error=batch.error,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        **extra,
    )


@router.get("/batches", summary="List acquisition batches, newest first", response_model=BatchPage)
def list_batches(
    _: Reader,
    session: SessionDep,
    page: PagingDep,
    connector: Annotated[str | None, Query(description="Only this connector.")] = None,
    status: Annotated[str | None, Query(description="Only this status: running, committed, failed.")] = None,
) -> BatchPage:
    query = select(Batch)
    if connector:
        query = query.where(Batch.connector == connector)
    if status:
        query = query.where(Batch.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Batch.started_at.desc(), Batch.id).limit(page.limit).offset(page.offset)
    )
    return BatchPage(items=[batch_out(b) for b in rows], total=total, limit=page.limit, offset=page.offset)


@router.get("/batches/{batch_id}", summary="One batch with its counts", response_model=BatchDetail)
def get_batch(batch_id: str, _: Reader, session: SessionDep) -> BatchOut:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch {batch_id!r}", remedy="list batches with GET /api/v1/batches")
    open_count = session.scalar(
        select(func.count())
        .select_from(QuarantineRecord)
        .where(QuarantineRecord.batch_id == batch_id, QuarantineRecord.status == "open")
    )
    return batch_out(batch, BatchDetail, quarantine_open=open_count or 0)
