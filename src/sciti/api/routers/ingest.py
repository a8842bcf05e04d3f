"""HTTP push: ``POST /api/v1/ingest/{source}`` -> one acquisition batch.

Takes NDJSON (``Content-Type: application/x-ndjson``, for jsonl connectors) or a file (multipart
field ``file``, or a raw body with an ``X-Filename`` header). Answers with the batch counts
(received = stored + quarantined + already_stored); the same body sent again answers
``duplicate``. Bodies over ``settings.max_upload_bytes`` are refused with 413 before they are read
in full.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from sciti.access import Principal, require
from sciti.acquire.errors import AcquireError
from sciti.acquire.transports.push import check_size, find_connector, media_type, push, result_json
from sciti.api.deps import SettingsDep
from sciti.errors import InvalidInput
from sciti.settings import Settings

router = APIRouter(tags=["ingest"])
_runner_lock = threading.Lock()


class IngestResult(BaseModel):
    """Counts of the batch the push became."""

    batch_id: str
    connector: str
    status: str = Field(description="committed | duplicate | failed")
    received: int
    stored: int
    quarantined: int
    already_stored: int = Field(
        0,
        description="Rows or units whose records were all stored before with the same values: "
        "counted, neither stored again nor quarantined.",
    )
    replaced: int = Field(
        0,
        description="Of the stored, rows that replaced a record stored before with other values "
        "(connectors with on_change: replace).",
    )
    tables: dict[str, int] = Field(default_factory=dict, description="lake table -> rows stored")
    error: str | None = None


def _runner(request: Request, settings: Settings) -> Any:
    """One runner per app; pushes are ingested one at a time (a runner is not shared by threads)."""
    runner = getattr(request.app.state, "ingest_runner", None)
    if runner is None:
        from sciti.acquire import Runner

        runner = request.app.state.ingest_runner = Runner(settings)
    return runner


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused as soon as it passes ``limit`` bytes."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            check_size(seen, request.app.state.settings)
        yield chunk


async def _read(request: Request, settings: Settings) -> tuple[bytes, str | None]:
    """(body bytes, file name from multipart) within the size limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        check_size(int(declared), settings)
    stream = _limited(request, settings.max_upload_bytes)
    if media_type(request.headers.get("content-type")) != "multipart/form-data":
        return b"".join([chunk async for chunk in stream]), None
    parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(
            f"the multipart body cannot be read: {exc.message}", remedy="send one field `file`"
        ) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "the multipart body has no file field `file`", remedy="send the file as field `file`"
            )
        return await upload.read(), upload.filename
    finally:
        await form.close()


@router.post(
    "/ingest/{source}",
    summary="Push NDJSON records or a file into a connector (one batch)",
    response_model=IngestResult,
    responses={
        413: {"description": "body larger than max_upload_bytes"},
        415: {"description": "unknown body"},
    },
)
async def ingest(
    request: Request,
    settings: SettingsDep,
    source: Annotated[str, Path(description="Connector name (or its source name).")],
    principal: Annotated[Principal, Depends(require("ingest.push"))],
    x_filename: Annotated[str | None, Header(description="File name of a raw-body upload.")] = None,
) -> IngestResult:
    connector = await run_in_threadpool(find_connector, settings, source)
    data, part_name = await _read(request, settings)
    filename = part_name or x_filename
    content_type = request.headers.get("content-type") if part_name is None else None

    def work() -> Any:
        with _runner_lock:
            return push(
                _runner(request, settings), connector, data, content_type=content_type, filename=filename
            )

    result = await run_in_threadpool(work)
    body = IngestResult(**result_json(result))
    if body.status == "failed":
        raise AcquireError(
            f"batch {body.batch_id} of {connector.name!r} failed: {body.error or 'see sciti batches'}",
            remedy="check the data and the connector; `sciti batches` shows the batch",
            details=body.model_dump(),
        )
    return body
