"""One error envelope for every failure the API returns.

``{"error": {"code", "message", "remedy", "details", "request_id"}}`` for our own errors
(SCITIError subclasses carry their code and HTTP status), routing errors (404, 405), request
validation (422, listing each field), and anything unexpected (500, with no internals leaked).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sciti.errors import SCITIError
from sciti.logs import request_id_var

log = logging.getLogger("sciti.api")


class NotAvailable(SCITIError):
    """A feature whose implementing module is not installed in this build."""

    code = "not_available"
    http_status = 501


_STATUS_CODES = {
    400: ("bad_request", "the request could not be understood"),
    401: ("authentication_required", "this endpoint needs a bearer token"),
    403: ("forbidden", "you are not allowed to do this"),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "this endpoint does not accept that method"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "the request body has a content type this endpoint does not take"),
}


def envelope(
    status: int,
    code: str,
    message: str,
    *,
    remedy: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON response every failure takes."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "remedy": remedy,
            "details": details or {},
            "request_id": request_id_var.get(),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def internal_error() -> JSONResponse:
    return envelope(
        500,
        "internal_error",
        "an unexpected error occurred on the server",
        remedy="try again; if it keeps happening, give the request id to an administrator",
    )


def _auth_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


async def _scitierror(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SCITIError)
    if exc.http_status >= 500:
        log.error("request failed: %s", exc.message, extra={"code": exc.code})
    return envelope(
        exc.http_status,
        exc.code,
        exc.message,
        remedy=exc.remedy,
        details=exc.details,
        headers=_auth_headers(exc.http_status),
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, default = _STATUS_CODES.get(exc.status_code, ("http_error", "the request failed"))
    details: dict[str, Any] = {}
    message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else default
    remedy = None
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
        remedy = "see the API reference at /api/v1/docs"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.url.path} does not accept {request.method}"
        details = {"allowed": [m.strip() for m in allowed.split(",") if m.strip()]}
        remedy = f"use one of: {allowed}" if allowed else None
    headers = dict(exc.headers or {})
    headers.update(_auth_headers(exc.status_code) or {})
    return envelope(exc.status_code, code, message, remedy=remedy, details=details, headers=headers or None)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        # Never echo the submitted value back: it may be a password.
        fields.append(
            {
                "location": loc[0] if loc else "",
                "field": ".".join(loc[1:]) or (loc[0] if loc else ""),
                "problem": err.get("msg", "invalid"),
                "type": err.get("type", ""),
            }
        )
    names = ", ".join(f["field"] for f in fields)
    return envelope(
        422,
        "validation_error",
        f"the request is invalid: {names}" if names else "the request is invalid",
        remedy="correct the listed fields; the expected shapes are in /api/v1/docs",
        details={"fields": fields},
    )


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return internal_error()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SCITIError, _scitierror)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unhandled)
