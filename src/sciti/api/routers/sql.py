"""Read-only SQL over the lake (DuckDB on Iceberg snapshots), rows returned as JSON."""

from __future__ import annotations

import base64
import importlib
import logging
import math
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from sciti.access import Principal, require
from sciti.api.deps import LakeDep
from sciti.lake import Lake

router = APIRouter(tags=["sql"])
log = logging.getLogger("sciti.api")
MAX_ROWS = 100_000


class SqlRequest(BaseModel):
    sql: str = Field(
        min_length=1, description="One SELECT statement; tables as zone.name, e.g. std.declarations."
    )
    as_of: str | int | datetime | None = Field(
        None, description="Read every table as of this snapshot id or ISO timestamp (time travel)."
    )
    limit: int = Field(1000, ge=1, le=MAX_ROWS, description="At most this many rows are returned.")


class Column(BaseModel):
    name: str
    type: str


class SqlResult(BaseModel):
    columns: list[Column]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = Field(description="True when the query had more rows than `limit`.")


def _first_rows(lake: Lake, sql: str, as_of: Any, limit: int) -> tuple[pa.Schema, list[pa.RecordBatch], bool]:
    """At most ``limit`` rows, streamed, so a huge result never sits in the server's memory."""
    lake_query = importlib.import_module("sciti.lake.query")  # the module; sciti.lake.query is the function
    reader_fn = getattr(lake_query, "query_reader", None)
    if reader_fn is None:
        table = lake_query.query(lake, sql, as_of=as_of)
        return table.schema, table.slice(0, limit).to_batches(), table.num_rows > limit
    reader = reader_fn(lake, sql, as_of=as_of)
    batches, seen, truncated = [], 0, False
    try:
        for batch in reader:
            if seen + batch.num_rows > limit:
                batches.append(batch.slice(0, limit - seen))
                truncated = True
                break
            batches.append(batch)
            seen += batch.num_rows
    finally:
        reader.close()
    return reader.schema, batches, truncated


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
    body: SqlRequest, lake: LakeDep, principal: Annotated[Principal, Depends(require("sql.query"))]
) -> SqlResult:
    schema, batches, truncated = await run_in_threadpool(_first_rows, lake, body.sql, body.as_of, body.limit)
    rows = [r for b in batches for r in b.to_pylist()]
    log.info("sql query", extra={"user": principal.username, "rows": len(rows), "truncated": truncated})
    return SqlResult(
        columns=[Column(name=f.name, type=str(f.type)) for f in schema],
        rows=jsonable_encoder([{k: _json_value(v) for k, v in r.items()} for r in rows]),
        row_count=len(rows),
        truncated=truncated,
    )
