"""Quarantined records: list, inspect, correct and re-submit, or discard.

Showing one record (its raw content), re-submitting and discarding go through the shared functions
of ``sciti.acquire.quarantine``, which audit them under the caller's account (decision 0099); the
list gives where and why, never the raw content. Acting on an entry that is no longer open answers
409 ``conflict`` (decision 0109). ``POST /quarantine/discard`` closes a whole selection, at most
``BULK_MAX`` entries a call, with one audit entry (decision 0110); ``POST /quarantine/resubmit``
re-submits one as quarantined, a few dozen entries a call (decision 0117).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from sciti.access import Principal, require
from sciti.acquire.errors import AcquireError
from sciti.acquire.quarantine_bulk import BULK_MAX, MAX_TEXT, Selection, discard_selection, selection_problems
from sciti.acquire.quarantine_resubmit import CALL_DEFAULT, CALL_MAX, CALL_SECONDS, resubmit_selection
from sciti.api.deps import PagingDep, RowId, SessionDep, SettingsDep
from sciti.api.errors import NotAvailable
from sciti.api.routers.sql import client_of
from sciti.errors import Conflict, NotFound
from sciti.ops import QuarantineRecord, session_scope
from sciti.settings import Settings

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


class Discard(BaseModel):
    reason: str = Field(
        max_length=2000,
        description="Why this record will not be stored (e.g. `sent again as a new version`). Kept on "
        "the entry with who discarded it; not written to the audit trail (it may quote the content).",
    )

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required: say why this record will not be stored")
        return value.strip()


class SelectionBody(BaseModel):
    """A selection of quarantine entries: every field given must match (decision 0110)."""

    model_config = ConfigDict(extra="forbid")
    connector: str | None = Field(None, max_length=MAX_TEXT["connector"], description="Only this connector.")
    source: str | None = Field(None, max_length=MAX_TEXT["source"], description="Only this data source.")
    batch_id: str | None = Field(None, max_length=MAX_TEXT["batch_id"], description="Only this batch.")
    reason_contains: str | None = Field(
        None,
        max_length=MAX_TEXT["reason_contains"],
        description="Only entries whose quarantine reason contains these words (as written; case matters).",
    )
    received_after: datetime | None = Field(
        None, description="Quarantined at or after (ISO 8601; UTC if no zone)."
    )
    received_before: datetime | None = Field(
        None, description="Quarantined before (ISO 8601; UTC if no zone)."
    )
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=BULK_MAX, description="Only these entries."
    )
    all: bool = Field(False, description="Consent to an empty selection: every open entry.")

    def selection(self) -> Selection:
        """The selection, or 422 naming each field that cannot be used (as a body error)."""
        sel = Selection(
            connector=self.connector,
            source=self.source,
            batch_id=self.batch_id,
            reason_contains=self.reason_contains,
            received_after=self.received_after,
            received_before=self.received_before,
            ids=tuple(self.ids),
            everything=self.all,
        )
        problems = selection_problems(sel)
        if problems:
            raise RequestValidationError(
                [{"loc": ("body", f), "msg": p, "type": "value_error"} for f, p in problems]
            )
        return sel


class BulkDiscard(SelectionBody):
    """A selection of quarantine entries (every field given must match), and why to discard them."""

    reason: str = Field(
        max_length=2000,
        description="Why these records will not be stored; kept on every entry closed (not audited).",
    )
    dry_run: bool = Field(False, description="Count what would be discarded; change nothing.")
    limit: int = Field(
        BULK_MAX, ge=1, le=BULK_MAX, description=f"At most this many entries (≤ {BULK_MAX:,})."
    )

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required: say why these records will not be stored")
        return value.strip()


class BulkDiscardOut(BaseModel):
    matched: int = Field(description="Open entries the selection took when the call began.")
    closed: int = Field(description="Entries this call discarded (in a dry run: would discard).")
    skipped: int = Field(description="Entries another action closed before this call reached them.")
    remaining: int = Field(description="Entries of the selection still open past the limit: call again.")
    already_closed: int = Field(description="Entries of the selection closed before this call.")
    dry_run: bool
    limit: int
    audit_ref: str | None = Field(description="Kept on every entry closed and in the audit entry.")
    selection: dict[str, Any]


class BulkResubmit(SelectionBody):
    """A selection of quarantine entries to re-submit as they were quarantined, a part per call."""

    dry_run: bool = Field(False, description="Count what would be re-submitted; change nothing.")
    limit: int = Field(
        CALL_DEFAULT,
        ge=1,
        le=CALL_MAX,
        description=f"At most this many entries this call (≤ {CALL_MAX}); a call also starts "
        f"no entry after {CALL_SECONDS:.0f} seconds.",
    )
    after_id: int = Field(
        0, ge=0, le=2**31 - 1, description="Continue: the `after_id` the previous call answered."
    )
    up_to_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Continue: the `up_to_id` the first call answered."
    )


class StillOpenOut(BaseModel):
    code: str = Field(description="The error code the re-submission gave (`batch_failed`: its batch failed).")
    why: str = Field(description="Its words, the entry's id read `ID`.")
    count: int
    ids: list[int] = Field(description="The first few entries.")


class BulkResubmitOut(BaseModel):
    selected: int = Field(description="Open entries of the selection (after `after_id`, up to `up_to_id`).")
    taken: int = Field(description="Entries this call reached (in a dry run: would reach).")
    resubmitted: int = Field(description="Re-submitted and closed (one received unit's share a batch).")
    still_open: int = Field(description="Re-submitted but left open; `reasons` says why.")
    closed_meanwhile: int = Field(description="Closed by another action before this call reached them.")
    remaining: int = Field(description="Not reached this call: call again with `after_id` and `up_to_id`.")
    already_closed: int = Field(description="Entries of the selection closed before this call.")
    stored: int = Field(description="Rows the re-submissions' batches stored.")
    quarantined: int = Field(description="Records quarantined again (new open entries).")
    already_stored: int = Field(description="Records found stored already with the same values.")
    reasons: list[StillOpenOut]
    after_id: int = Field(description="The last entry this call reached: pass it to the next call.")
    up_to_id: int | None = Field(description="The selection's highest entry: pass it to the next call.")
    dry_run: bool
    limit: int
    seconds: float
    audit_ref: str | None = Field(description="In the run's audit entry and on every entry it closed.")
    selection: dict[str, Any]


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


def _status(settings: Settings, record_id: int) -> str:
    """The entry's status; 404 when there is none."""
    with session_scope(settings.resolved_ops_db_url) as session:
        return _load(session, record_id).status


def _closed(settings: Settings, record_id: int, exc: AcquireError, action: str) -> Conflict | None:
    """A 409 for an action refused because the entry is no longer open (the shared function
    refused and audited it: its error says ``already discarded``), else None."""
    if type(exc) is not AcquireError:  # a correction that does not fit, a connector: not a conflict
        return None
    status = _status(settings, record_id)
    if status == "open":
        return None
    return Conflict(
        f"quarantine entry {record_id} is already {status}; only open entries can be {action}",
        remedy=f"see who closed it and when with GET /api/v1/quarantine/{record_id}",
        details={"quarantine_id": record_id, "status": status},
    )


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

    await run_in_threadpool(_status, settings, record_id)  # 404 before anything else
    fn = getattr(importlib.import_module("sciti.acquire"), "resubmit", None)
    if fn is None:
        raise NotAvailable(
            "re-submission is not available in this build", remedy="use `sciti quarantine resubmit`"
        )
    try:
        result = await run_in_threadpool(
            fn, settings, record_id, body.corrected, principal.username, source=client_of(request)
        )
    except AcquireError as exc:
        closed = await run_in_threadpool(_closed, settings, record_id, exc, "re-submitted")
        if closed is not None:
            raise closed from None
        raise
    log.info("quarantine resubmitted", extra={"quarantine_id": record_id, "user": principal.username})
    return {"quarantine_id": record_id, "result": _plain(result)}


@router.post(
    "/quarantine/{record_id}/discard",
    summary="Close a quarantined record without storing it, with a reason",
    response_model=QuarantineOut,
)
async def discard(
    record_id: RowId, body: Discard, principal: Resubmitter, settings: SettingsDep, request: Request
) -> QuarantineOut:
    """As `sciti quarantine discard`: the entry becomes `discarded`, with the reason and the account
    on it; the decision is audited (`quarantine.discard`), without the reason or the raw text.
    Needs `quarantine.resubmit`. 404 for an unknown entry, 409 `conflict` for one already closed
    (resubmitted or discarded; the refusal is audited too)."""
    from sciti.acquire.quarantine import discard as discard_entry

    await run_in_threadpool(_status, settings, record_id)  # 404 in the API's words, before anything
    try:
        entry = await run_in_threadpool(
            discard_entry, settings, record_id, body.reason, principal.username, source=client_of(request)
        )
    except AcquireError as exc:
        closed = await run_in_threadpool(_closed, settings, record_id, exc, "discarded")
        if closed is not None:
            raise closed from None
        raise
    log.info("quarantine discarded", extra={"quarantine_id": record_id, "user": principal.username})
    return QuarantineOut(**{n: entry.get(n) for n in QuarantineOut.model_fields})


@router.post(
    "/quarantine/discard",
    summary="Discard every open quarantined record of a selection, with a reason",
    response_model=BulkDiscardOut,
)
async def discard_many(
    body: BulkDiscard, principal: Resubmitter, settings: SettingsDep, request: Request
) -> BulkDiscardOut:
    """As `sciti quarantine discard --connector … --reason …`: the open entries the selection takes
    become `discarded`, each with the reason and the account; ONE audit entry (`quarantine.discard`)
    holds the selection and the counts. `dry_run: true` answers the counts and changes nothing. An
    empty selection is refused unless `all: true`. One call closes at most `limit` (at most 50,000)
    entries; `remaining` says how many are left for the next call. Needs `quarantine.resubmit`."""
    sel = body.selection()
    result = await run_in_threadpool(
        discard_selection,
        settings,
        sel,
        body.reason,
        principal.username,
        source=client_of(request),
        dry_run=body.dry_run,
        limit=body.limit,
    )
    if not body.dry_run:
        log.info("quarantine discarded in bulk", extra={"closed": result.closed, "user": principal.username})
    return BulkDiscardOut(**dataclasses.asdict(result))


@router.post(
    "/quarantine/resubmit",
    summary="Re-submit the open quarantined records of a selection as they were quarantined",
    response_model=BulkResubmitOut,
)
async def resubmit_many(
    body: BulkResubmit, principal: Resubmitter, settings: SettingsDep, request: Request
) -> BulkResubmitOut:
    """As `sciti quarantine resubmit --connector …`, once the cause is fixed (a connector, a code
    list): each open entry the selection takes runs again through its connector as quarantined,
    audited as a single re-submission; the entries of one received unit go as one batch (a bundle,
    decision 0120) that each is linked to. An entry is closed when its rows came in, else it stays
    open and `reasons` says why. One call takes at most `limit` (≤ 100) entries and
    starts none after 20 seconds; while `remaining` is not 0, call again with the `after_id` and
    `up_to_id` it answered (entries it quarantines again are newer than `up_to_id`: never taken).
    One audit entry per call (`quarantine.resubmit`, `bulk`). `dry_run: true` counts. An empty
    selection is refused unless `all: true`. Needs `quarantine.resubmit`."""
    sel = body.selection()
    if body.after_id and body.up_to_id is None:  # else what the first call quarantined again is taken
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "up_to_id"),
                    "msg": "is needed with after_id: pass both values the previous call answered",
                    "type": "value_error",
                }
            ]
        )
    result = await run_in_threadpool(
        partial(
            resubmit_selection,
            settings,
            sel,
            principal.username,
            source=client_of(request),
            dry_run=body.dry_run,
            limit=body.limit,
            after_id=body.after_id,
            up_to_id=body.up_to_id,
            budget=CALL_SECONDS,
        )
    )
    if not body.dry_run:
        log.info(
            "quarantine resubmitted in bulk",
            extra={
                "resubmitted": result.resubmitted,
                "still_open": result.still_open,
                "user": principal.username,
            },
        )
    return BulkResubmitOut(**dataclasses.asdict(result))


def _plain(value: Any) -> Any:
    """Whatever the acquisition layer returns (a batch row, a dataclass, an id) as JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable_encoder(dataclasses.asdict(value))
    table = getattr(value, "__table__", None)
    if table is not None:  # an ORM row
        return jsonable_encoder({c.name: getattr(value, c.key, None) for c in table.columns})
    return jsonable_encoder(value)
