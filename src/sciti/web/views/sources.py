"""Sources and batches (live while ingests run), the quarantine browser, correct and re-submit,
discard one entry or every open entry of a filter, re-submit them as quarantined a part per click."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from sciti.access import Principal
from sciti.acquire.quarantine import show_quarantine
from sciti.acquire.quarantine_bulk import BULK_MAX, Selection, selection_problems, selection_where
from sciti.acquire.quarantine_resubmit import CALL_DEFAULT
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, session_scope
from sciti.settings import Settings
from sciti.web.errors import PageNotFound
from sciti.web.render import page, render, settings_of

router = APIRouter()
PAGE = 50


def _batches(settings: Settings, offset: int) -> dict[str, Any]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rows = session.scalars(
            select(Batch).order_by(Batch.started_at.desc(), Batch.id).limit(PAGE).offset(offset)
        ).all()
        total = session.scalar(select(func.count()).select_from(Batch)) or 0
        sources = session.execute(
            select(
                Batch.connector,
                func.count(),
                func.sum(Batch.received),
                func.sum(Batch.stored),
                func.sum(Batch.quarantined),
                func.sum(Batch.already_stored),
                func.sum(Batch.replaced),
                func.max(Batch.finished_at),
            )
            .group_by(Batch.connector)
            .order_by(Batch.connector)
        ).all()
        items = [
            {
                "id": b.id,
                "connector": b.connector,
                "unit": b.unit,
                "status": b.status,
                "received": b.received,
                "stored": b.stored,
                "quarantined": b.quarantined,
                "already_stored": b.already_stored,
                "replaced": b.replaced,
                "reconciled": b.reconciled,
                "started_at": b.started_at,
                "finished_at": b.finished_at,
                "error": b.error,
            }
            for b in rows
        ]
    return {
        "items": items,
        "total": total,
        "offset": offset,
        "running": any(i["status"] == "running" for i in items),
        "sources": [
            {
                "connector": c,
                "batches": n,
                "received": r or 0,
                "stored": s or 0,
                "quarantined": q or 0,
                "already_stored": a or 0,
                "replaced": x or 0,
                "last": f,
            }
            for c, n, r, s, q, a, x, f in sources
        ],
    }


@router.get("/sources", response_class=HTMLResponse)
async def sources(
    request: Request,
    principal: Annotated[Principal, Depends(page("batches.read"))],
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    data = await run_in_threadpool(_batches, settings_of(request), offset)
    template = "sources_table.html" if request.headers.get("hx-request") else "sources.html"
    return await render(request, template, principal, active="sources", data=data, page_size=PAGE)


def _quarantine(settings: Settings, status: str, sel: Selection, offset: int) -> dict[str, Any]:
    """A page of entries the filter takes and, when it names a selection, how many of them are open
    (what "discard all" would close: the same selection as ``discard_selection``, decision 0110)."""
    with session_scope(settings.resolved_ops_db_url) as session:
        where = selection_where(sel)
        shown = [*where, QuarantineRecord.status == status] if status else where
        rows = session.scalars(
            select(QuarantineRecord)
            .where(*shown)
            .order_by(QuarantineRecord.id.desc())
            .limit(PAGE)
            .offset(offset)
        ).all()
        total = session.scalar(select(func.count()).select_from(QuarantineRecord).where(*shown)) or 0
        connectors = session.scalars(select(QuarantineRecord.connector).distinct()).all()
        bulk = None
        if not selection_problems(sel):
            is_open = QuarantineRecord.status == "open"
            bulk = {
                "open": session.scalar(
                    select(func.count()).select_from(QuarantineRecord).where(*where, is_open)
                )
                or 0,
                "max": BULK_MAX,
                "per_call": CALL_DEFAULT,  # re-submitted per click (decision 0117)
            }
        items = [
            {
                "id": r.id,
                "batch_id": r.batch_id,
                "connector": r.connector,
                "locator": r.locator,
                "field": r.field,
                "reason": r.reason,
                "status": r.status,
                "created_at": r.created_at,
            }
            for r in rows
        ]
    return {"items": items, "total": total, "offset": offset, "connectors": sorted(connectors), "bulk": bulk}


@router.get("/quarantine", response_class=HTMLResponse)
async def quarantine(
    request: Request,
    principal: Annotated[Principal, Depends(page("quarantine.read"))],
    status: str = "open",
    connector: str = "",
    batch_id: str = "",
    reason_contains: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    sel = Selection(
        connector=connector or None, batch_id=batch_id or None, reason_contains=reason_contains or None
    )
    data = await run_in_threadpool(_quarantine, settings_of(request), status, sel, offset)
    return await render(
        request,
        "quarantine.html",
        principal,
        active="quarantine",
        data=data,
        status=status,
        connector=connector,
        batch_id=batch_id,
        reason_contains=reason_contains,
        page_size=PAGE,
    )


def _one(settings: Settings, record_id: int, user: str, client: str) -> dict[str, Any]:
    """The entry with its raw text, read through ``show_quarantine``, which audits the read (the raw
    text is the content as received: a passenger feed's line holds personal data)."""
    try:
        rec = show_quarantine(settings, record_id, user=user, source=client)
    except NotFound:
        raise PageNotFound("error.no_quarantined", "error.no_quarantined_remedy", id=record_id) from None
    return {**rec, "raw": rec["raw"] or "", "details": rec["details"] or {}}


@router.get("/quarantine/{record_id}", response_class=HTMLResponse)
async def quarantine_record(
    request: Request, record_id: int, principal: Annotated[Principal, Depends(page("quarantine.read"))]
) -> HTMLResponse:
    client = request.client.host if request.client else "web"
    rec = await run_in_threadpool(_one, settings_of(request), record_id, principal.username, client)
    return await render(request, "quarantine_record.html", principal, active="quarantine", rec=rec)
