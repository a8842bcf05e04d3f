"""SQL workbench: run read-only SQL through the policy point, chart any result, save queries,
export as CSV or Parquet. Runs, refusals and exports are audited exactly as ``POST /api/v1/sql``,
and, as there, a run or export whose browser left (tab closed, page reloaded) is stopped."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from decimal import Decimal
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import delete, select
from starlette.background import BackgroundTask

from sciti.access import Principal
from sciti.access.sqlpath import QueryLimits, audited_query
from sciti.api.routers.sql import run_watched
from sciti.errors import SCITIError
from sciti.lake import open_lake
from sciti.lake.running import StopSignal
from sciti.ops import session_scope
from sciti.ops.web_tables import SavedQuery
from sciti.settings import Settings
from sciti.web.errors import PageInvalid, say
from sciti.web.i18n import Translator
from sciti.web.render import language, page, render, settings_of

router = APIRouter()
SHOW_ROWS = 1000
NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


def _client(request: Request) -> str:
    return request.client.host if request.client else "web"


def _saved(settings: Settings, user_id: int) -> list[dict[str, Any]]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rows = session.scalars(
            select(SavedQuery).where(SavedQuery.user_id == user_id).order_by(SavedQuery.name)
        )
        return [{"id": r.id, "name": r.name, "sql": r.sql} for r in rows]


@router.get("/sql", response_class=HTMLResponse)
async def workbench(
    request: Request, principal: Annotated[Principal, Depends(page("sql.query"))], sql: str = ""
) -> HTMLResponse:
    saved = await run_in_threadpool(_saved, settings_of(request), principal.user_id)
    return await render(request, "sql.html", principal, active="sql", saved=saved, sql=sql)


def _cell(value: Any) -> Any:
    """A result value as the table shows it and the chart's JSON can carry."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.time, dt.timedelta, uuid.UUID)):  # datetime is a date
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def _run(
    settings: Settings,
    principal: Principal,
    sql: str,
    unmask: bool,
    purpose: str,
    client: str,
    stop: StopSignal | None = None,
) -> dict:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    with audited_query(
        settings.resolved_ops_db_url,
        lake,
        principal,
        sql,
        action="query",
        source=client,
        unmask=unmask,
        purpose=purpose or None,
        limits=QueryLimits.from_settings(settings),
        stop=stop,
    ) as result:
        schema, batches, truncated = result.first_rows(SHOW_ROWS)  # bounded in rows and in bytes
        masked = result.masked
    table = pa.Table.from_batches(batches, schema=schema)
    columns = [{"name": f.name, "numeric": any(t(f.type) for t in NUMERIC)} for f in schema]
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    return {"columns": columns, "rows": rows, "truncated": truncated, "masked": masked}


@router.post("/sql/run", response_class=HTMLResponse)
async def run(
    request: Request,
    principal: Annotated[Principal, Depends(page("sql.query"))],
    sql: Annotated[str, Form()] = "",
    unmask: Annotated[bool, Form()] = False,
    purpose: Annotated[str, Form()] = "",
) -> HTMLResponse:
    if not sql.strip():
        return await render(request, "sql_result.html", principal, error="sql.empty")
    settings, client = settings_of(request), _client(request)
    try:
        result = await run_watched(
            request, lambda stop: _run(settings, principal, sql, unmask, purpose.strip(), client, stop)
        )
    except SCITIError as exc:  # refused or failed: shown beside the editor (already audited)
        failure, remedy, detail = say(Translator(language(request)), exc)
        return await render(
            request, "sql_result.html", principal, failure=failure, remedy=remedy, detail=detail
        )
    return await render(request, "sql_result.html", principal, result=result)


def _export(
    settings: Settings,
    principal: Principal,
    sql: str,
    fmt: str,
    unmask: bool,
    purpose: str,
    client: str,
    stop: StopSignal | None = None,
) -> str:
    fd, path = tempfile.mkstemp(prefix="sciti-export-", suffix=f".{fmt}")
    os.close(fd)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    try:
        with audited_query(
            settings.resolved_ops_db_url,
            lake,
            principal,
            sql,
            action="export",
            source=client,
            unmask=unmask,
            purpose=purpose or None,
            extra={"format": fmt, "via": "web"},
            limits=QueryLimits.from_settings(settings, export=True),
            stop=stop,
        ) as result:
            rows = 0
            schema = result.reader.schema
            writer: Any = (
                pq.ParquetWriter(path, schema) if fmt == "parquet" else pacsv.CSVWriter(path, schema)
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


@router.post("/sql/export")
async def export(
    request: Request,
    principal: Annotated[Principal, Depends(page("sql.export"))],
    sql: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "csv",
    unmask: Annotated[bool, Form()] = False,
    purpose: Annotated[str, Form()] = "",
) -> Response:
    """The whole result as a file, masked as on screen unless unmasked (``personal.unmask`` and a
    purpose, as for a run); audited as ``export``, with what was unmasked."""
    if format not in ("csv", "parquet"):
        raise PageInvalid("error.export_format", "error.export_format_remedy", format=format)
    if not sql.strip():
        raise PageInvalid("error.export_empty", "sql.empty")
    settings, client = settings_of(request), _client(request)
    path = await run_watched(
        request, lambda stop: _export(settings, principal, sql, format, unmask, purpose.strip(), client, stop)
    )
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return FileResponse(
        path, media_type=media, filename=f"sciti-export.{format}", background=BackgroundTask(os.unlink, path)
    )


def _save(settings: Settings, user_id: int, name: str, sql: str) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        row = session.scalar(select(SavedQuery).where(SavedQuery.user_id == user_id, SavedQuery.name == name))
        if row is None:
            session.add(SavedQuery(user_id=user_id, name=name, sql=sql))
        else:
            row.sql = sql


@router.post("/sql/saved", response_class=HTMLResponse)
async def save(
    request: Request,
    principal: Annotated[Principal, Depends(page("sql.query"))],
    name: Annotated[str, Form()] = "",
    sql: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Save (or replace) a query under a name; answers the refreshed list."""
    name = name.strip()[:200]
    if not name or not sql.strip():
        raise PageInvalid("error.save_incomplete", "error.save_incomplete_remedy")
    settings = settings_of(request)
    await run_in_threadpool(_save, settings, principal.user_id, name, sql)
    saved = await run_in_threadpool(_saved, settings, principal.user_id)
    return await render(request, "sql_saved.html", principal, saved=saved)


def _forget(settings: Settings, user_id: int, query_id: int) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        session.execute(delete(SavedQuery).where(SavedQuery.id == query_id, SavedQuery.user_id == user_id))


@router.post("/sql/saved/{query_id}/delete", response_class=HTMLResponse)
async def forget(
    request: Request, query_id: int, principal: Annotated[Principal, Depends(page("sql.query"))]
) -> HTMLResponse:
    settings = settings_of(request)
    await run_in_threadpool(_forget, settings, principal.user_id, query_id)
    saved = await run_in_threadpool(_saved, settings, principal.user_id)
    return await render(request, "sql_saved.html", principal, saved=saved)
