"""Unmask one record for a stated purpose: clear values of named personal fields, audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from sciti.access import Principal, require
from sciti.access.sqlpath import audited_query, unmask_sql
from sciti.api.deps import LakeDep, SettingsDep
from sciti.api.routers.sql import NO_NUL, _json_value, client_of
from sciti.errors import NotFound
from sciti.lake import Lake
from sciti.settings import Settings

router = APIRouter(tags=["sql"])


class UnmaskRequest(BaseModel):
    table: str = Field(min_length=3, max_length=200, description="Lake table, e.g. std.passengers.")
    record_id: str = Field(min_length=1, max_length=200, pattern=NO_NUL, description="Its record_id.")
    fields: list[str] = Field(min_length=1, max_length=100, description="Fields to show in clear.")
    purpose: str = Field(min_length=3, max_length=500, pattern=NO_NUL, description="Why (audited).")


class UnmaskResult(BaseModel):
    table: str
    record_id: str
    values: dict[str, Any]


def _unmask(settings: Settings, lake: Lake, principal: Principal, body: UnmaskRequest, source: str) -> dict:
    sql = unmask_sql(principal, body.table, body.record_id, body.fields)
    with audited_query(
        settings.resolved_ops_db_url,
        lake,
        principal,
        sql,
        action="unmask",
        source=source,
        unmask=True,
        purpose=body.purpose,
        extra={"record_id": body.record_id, "fields": body.fields},
    ) as result:
        rows = result.reader.read_all().to_pylist()
        result.rows = len(rows)
    if not rows:
        raise NotFound(
            f"no record {body.record_id!r} in {body.table} that you may see",
            remedy="check the record_id (a query shows it) and the table",
        )
    return rows[0]


@router.post(
    "/unmask", summary="Show one record's personal fields in clear (audited)", response_model=UnmaskResult
)
async def unmask_record(
    body: UnmaskRequest,
    request: Request,
    lake: LakeDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("personal.unmask"))],
) -> UnmaskResult:
    row = await run_in_threadpool(_unmask, settings, lake, principal, body, client_of(request))
    return UnmaskResult(
        table=body.table, record_id=body.record_id, values={k: _json_value(v) for k, v in row.items()}
    )
