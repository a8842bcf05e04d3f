"""Read-only SQL over the lake as the caller: permitted tables, rows and masked columns; audited.

``POST /sql`` returns rows as JSON; ``POST /sql/export`` returns the whole result as CSV or
Parquet (permission ``sql.export``, audited as ``export``). Both run through the access policy
(``sciti.access.audited_query``): the same views, masks and audit entries as ``sciti sql``.

Both are bounded by the instance's ``sql_*`` settings (decision 0098): a query past its time limit
answers 422 ``query_timeout``, an answer over its byte cap or an export over its row cap 422
``answer_too_large``; each is audited with its outcome. A query whose client disconnects is
stopped within a fraction of a second and audited as ``stopped`` by ``client_disconnected``
(:func:`run_watched`, decision 0109): DuckDB would otherwise work on for nobody until its time limit.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar, cast

import anyio
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from sciti.access import Principal, require
from sciti.access.sqlpath import QueryLimits, audited_query
from sciti.api.deps import LakeDep, SettingsDep
from sciti.lake import Lake
from sciti.lake.running import StopSignal
from sciti.settings import Settings

router = APIRouter(tags=["sql"])
log = logging.getLogger("sciti.api")
MAX_ROWS = 100_000
NO_NUL = r"^[^\x00]*$"  # audited text: PostgreSQL text cannot hold NUL, so it is bad input, not a 500
# How often a running query's connection is looked at: a query whose client left stops within this.
DISCONNECT_POLL_SECONDS = 0.25
T = TypeVar("T")


class SqlRequest(BaseModel):
    sql: str = Field(
        min_length=1,
        max_length=100_000,
        description="One SELECT statement; tables as zone.name, e.g. std.declarations.",
    )
    as_of: str | int | datetime | None = Field(
        None, description="Read every table as of this snapshot id or ISO timestamp (time travel)."
    )
    limit: int = Field(1000, ge=1, le=MAX_ROWS, description="At most this many rows are returned.")
    purpose: str | None = Field(
        None, max_length=500, pattern=NO_NUL, description="Why you run it; recorded in the audit trail."
    )
    unmask: bool = Field(
        False,
        description="Personal fields in clear: needs `personal.unmask` and a `purpose`; audited as unmask.",
    )


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


class ExportRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT statement.")
    as_of: str | int | datetime | None = Field(None, description="Time travel: snapshot id or ISO timestamp.")
    format: ExportFormat = Field(ExportFormat.csv, description="csv or parquet.")
    purpose: str | None = Field(
        None, max_length=500, description="Why you export; recorded in the audit trail."
    )
    unmask: bool = Field(False, description="Personal fields in clear (`personal.unmask` and a purpose).")


class Column(BaseModel):
    name: str
    type: str


class SqlResult(BaseModel):
    columns: list[Column]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="True when the query had more rows than `limit`.")


def client_of(request: Request) -> str:
    return request.client.host if request.client else "api"


async def run_watched(request: Request, fn: Callable[[StopSignal], T]) -> T:
    """``fn(stop)`` in a worker thread while the HTTP connection is watched: if the client
    disconnects, ``stop`` interrupts the lake query ``fn`` runs with it (it raises
    ClientDisconnected, audited as ``stopped``). Used by the API and the web SQL page alike."""
    stop = StopSignal()
    done = anyio.Event()
    answer: list[tuple[bool, Any]] = []

    async def work() -> None:
        try:
            answer.append((True, await run_in_threadpool(fn, stop)))
        except Exception as exc:  # raised below, as the endpoint's own (not as a task group's)
            answer.append((False, exc))
        finally:
            done.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(work)
        try:
            while not done.is_set():
                with anyio.move_on_after(DISCONNECT_POLL_SECONDS):
                    await done.wait()
                if not done.is_set() and await request.is_disconnected():
                    stop.stop("client")
                    await done.wait()
        except BaseException:
            # Cancelled: some ASGI servers cancel a request whose client left. (At a shutdown,
            # `sciti serve` has stopped the query already, and that reason stands.)
            stop.stop("client")
            raise
    ok, value = answer[0]
    if not ok:
        raise value
    return cast(T, value)


def _first_rows(
    settings: Settings,
    lake: Lake,
    principal: Principal,
    body: SqlRequest,
    source: str,
    stop: StopSignal | None = None,
) -> tuple[pa.Schema, list[pa.RecordBatch], bool]:
    """At most ``limit`` rows, streamed, so a huge result never sits in the server's memory."""
    with audited_query(
        settings.resolved_ops_db_url,
        lake,
        principal,
        body.sql,
        action="query",
        source=source,
        as_of=body.as_of,
        unmask=body.unmask,
        purpose=body.purpose,
        limits=QueryLimits.from_settings(settings),
        stop=stop,
    ) as result:
        return result.first_rows(body.limit)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, Decimal):
        return str(value)  # exact: declared values and duties must not pick up float rounding
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


@router.post("/sql", summary="Run a read-only SQL query over the lake", response_model=SqlResult)
async def run_sql(
    body: SqlRequest,
    request: Request,
    lake: LakeDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("sql.query"))],
) -> SqlResult:
    source = client_of(request)
    schema, batches, truncated = await run_watched(
        request, lambda stop: _first_rows(settings, lake, principal, body, source, stop)
    )
    rows = [r for b in batches for r in b.to_pylist()]
    log.info("sql query", extra={"user": principal.username, "rows": len(rows), "truncated": truncated})
    return SqlResult(
        columns=[Column(name=f.name, type=str(f.type)) for f in schema],
        rows=jsonable_encoder([{k: _json_value(v) for k, v in r.items()} for r in rows]),
        row_count=len(rows),
        truncated=truncated,
    )


def _export(
    settings: Settings,
    lake: Lake,
    principal: Principal,
    body: ExportRequest,
    source: str,
    stop: StopSignal | None = None,
) -> str:
    """Write the whole result to a temporary file (removed after the response); returns its path."""
    fd, path = tempfile.mkstemp(prefix="sciti-export-", suffix=f".{body.format.value}")
    os.close(fd)
    try:
        with audited_query(
            settings.resolved_ops_db_url,
            lake,
            principal,
            body.sql,
            action="export",
            source=source,
            as_of=body.as_of,
            unmask=body.unmask,
            purpose=body.purpose,
            extra={"format": body.format.value},
            limits=QueryLimits.from_settings(settings, export=True),
            stop=stop,
        ) as result:
            rows = 0
            writer: Any = (
                pq.ParquetWriter(path, result.reader.schema)
                if body.format is ExportFormat.parquet
                else pacsv.CSVWriter(path, result.reader.schema)
            )
            with writer:
                for batch in result.reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            result.rows = rows
    except BaseException:
        os.unlink(path)
        raise
    return path


@router.post(
    "/sql/export",
    summary="Export a query's result as CSV or Parquet (audited)",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
async def export_sql(
    body: ExportRequest,
    request: Request,
    lake: LakeDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("sql.export"))],
) -> FileResponse:
    source = client_of(request)
    path = await run_watched(request, lambda stop: _export(settings, lake, principal, body, source, stop))
    media = "text/csv" if body.format is ExportFormat.csv else "application/vnd.apache.parquet"
    return FileResponse(
        path,
        media_type=media,
        filename=f"sciti-export.{body.format.value}",
        background=BackgroundTask(os.unlink, path),
    )
