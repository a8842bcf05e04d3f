"""One error envelope for every failure the API returns.

``{"error": {"code", "message", "remedy", "details", "request_id"}}`` for our own errors
(SCITIError subclasses carry their code and HTTP status), routing errors (404, 405), request
validation (422, listing each field), and anything unexpected (500, with no internals leaked).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    return _invalid(exc.errors())


def _invalid(errors: Any) -> JSONResponse:
    fields = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        problem = err.get("msg", "invalid")
        if err.get("type") == "json_invalid" and loc[:1] == ["body"]:
            # FastAPI puts the character position where a field name goes: ("body", 8).
            problem = _json_problem(loc[1:], err.get("ctx"))
            loc = loc[:1]
        # Never echo the submitted value back: it may be a password.
        fields.append(
            {
                "location": loc[0] if loc else "",
                "field": ".".join(loc[1:]) or (loc[0] if loc else ""),
                "problem": problem,
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


def _json_problem(position: list[str], ctx: Any) -> str:
    """``not valid JSON (at character 8): Expecting value`` (the decoder's words hold no input)."""
    where = f" (at character {position[0]})" if position else ""
    reason = ctx.get("error") if isinstance(ctx, dict) else None
    return f"not valid JSON{where}: {reason}" if reason else f"not valid JSON{where}"


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return internal_error()


# Bodies taken as files (raw data as received, kept byte for byte): a NUL there is data, not text.
RAW_BODY_PREFIXES = ("/api/v1/ingest/",)
_NUL_ERROR = {"msg": "must not contain a NUL character (\\x00)", "type": "string_nul"}
PAGES_PREFIX = "/ui/"  # the web app (sciti.web), which answers in HTML
NUL_SCOPE_KEY = "sciti.nul_fields"  # where RejectNul leaves its findings for the web app


def _nul_locations(value: Any, loc: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Where in a decoded JSON value a string (or an object key) holds a NUL character."""
    if isinstance(value, str):
        return [loc] if "\x00" in value else []
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [(*loc, key.replace("\x00", ""))] if "\x00" in key else _nul_locations(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _nul_locations(item, (*loc, i))
    return found


class RejectNul:
    """422 (field by field) for a NUL character in the path, the query or a JSON / form body.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep inside a query as a
    500; no free text SCITI takes has a use for it. One check here covers every endpoint, the API
    and the web pages alike, before any route or database sees the request (decision 0058).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found: list[tuple[Any, ...]] = []
        if "\x00" in scope.get("path", ""):
            found.append(("path",))
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            found += [("query", k.replace("\x00", "")) for k, v in pairs if "\x00" in k or "\x00" in v]
        ctype = _media_type(scope)
        if ctype in _TEXT_BODIES and not scope.get("path", "").startswith(RAW_BODY_PREFIXES):
            body, more = await _read_body(receive)
            found += await _body_nul(ctype, body, scope)
            receive = _replay(body, more, receive)
        if found:
            errors = [{"loc": loc, **_NUL_ERROR} for loc in found]
            if scope.get("path", "").startswith(PAGES_PREFIX):
                # The web app refuses it before any page runs, as an HTML page in the user's language.
                scope[NUL_SCOPE_KEY] = errors
            else:
                await _invalid(errors)(scope, receive, send)
                return
        await self.app(scope, receive, send)


_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
# Every request but HTTP push (its own max_upload_bytes, for files): a batch of 1,000 assessments
# is a few megabytes. Far more is a mistake or an attack, and would hold the event loop that
# answers clearance systems while it is parsed.
MAX_BODY_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    pass


class LimitBody:
    """413 for a request body over ``MAX_BODY_BYTES``: at once when Content-Length says so, else as
    soon as that many bytes have arrived (a chunked body), before any route parses it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(RAW_BODY_PREFIXES):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = envelope(
            413,
            "payload_too_large",
            f"the request body is larger than {self.limit // (1024 * 1024)} MB",
            remedy="send fewer records per request (at most 1,000 assessments), or files through "
            "/api/v1/ingest",
            details={"limit_bytes": self.limit},
        )
        await response(scope, receive, send)


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body (what the route would read anyway); ``more`` if the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive() if not disconnected else {"type": "http.disconnect"}

    return replay


async def _body_nul(ctype: str, body: bytes, scope: Scope) -> list[tuple[Any, ...]]:
    if ctype == "application/json":
        if b"\\u0000" not in body:  # the only way JSON text can hold a NUL (a raw one is invalid JSON)
            return []
        try:
            return _nul_locations(json.loads(body), ("body",))
        except ValueError:
            return []  # not JSON at all: the route's own validation says so
    if ctype == "application/x-www-form-urlencoded":
        if b"%00" not in body and b"\x00" not in body:
            return []
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        return [("body", k.replace("\x00", "")) for k, v in pairs if "\x00" in k or "\x00" in v]
    if b"\x00" not in body:
        return []
    # multipart: text fields only; uploaded files are data and may hold any byte.
    try:
        form = await Request(scope, _replay(body, False, _disconnected)).form()
    except Exception:  # a malformed body: the route's own parsing answers it
        return []
    try:
        return [("body", k) for k, v in form.multi_items() if not isinstance(v, UploadFile) and "\x00" in v]
    finally:
        await form.close()


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SCITIError, _scitierror)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unhandled)
    # Input PostgreSQL cannot store is refused up front with a field-level 422, not a 500.
    app.add_middleware(RejectNul)
    app.add_middleware(LimitBody)  # added last, runs first: before RejectNul reads the body
