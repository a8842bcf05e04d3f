"""Per-request context: request id, security headers, access log line, metrics, and the
last-resort 500 envelope.

A plain ASGI middleware (not BaseHTTPMiddleware) so streaming responses pass through untouched and
the request id context variable is visible to every log record made while handling the request.
It wraps the whole app, the web pages under /ui included (they are a mount of this app), so the
security headers are set here, once, for every answer (:func:`security_headers`).
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sciti.api import metrics
from sciti.api.errors import internal_error
from sciti.api.routes import route_template
from sciti.logs import request_id_var

access_log = logging.getLogger("sciti.api.access")
log = logging.getLogger("sciti.api")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET = {"/healthz", "/metrics"}  # scraped every few seconds: keep them out of INFO logs

# Security headers of every answer (decision 0101), as the raw bytes ASGI sends: no work per request
# beyond a scan of the answer's own headers. Pages may not be framed (clickjacking), content types
# are not guessed, a link followed to another site carries no address (addresses can hold record
# ids and filters).
FRAME_ANCESTORS = b"frame-ancestors 'none'"
_ALWAYS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
# Answers carry personal data (unmasked SQL results and exports, record pages) or what a session
# may see: no browser or proxy keeps a copy, unless the answer says otherwise itself. The web
# application's static assets (CSS, scripts, fonts) hold no data and keep their caching.
NO_STORE = (b"cache-control", b"no-store")
STATIC_PREFIX = "/ui/static/"
_CSP = b"content-security-policy"
_OWN = {b"cache-control", _CSP, *(name for name, _ in _ALWAYS)}


def security_headers(headers: list[tuple[bytes, bytes]], *, static: bool) -> list[tuple[bytes, bytes]]:
    """``headers`` of an answer with the security headers added (``static``: a static asset, see
    :func:`is_static`). A header the answer sets itself is kept (a ``Cache-Control`` of its own
    wins); a Content-Security-Policy of its own gets ``frame-ancestors 'none'`` unless it says where
    it may be framed."""
    present = {name.lower(): i for i, (name, _) in enumerate(headers) if name.lower() in _OWN}
    out = headers + [h for h in _ALWAYS if h[0] not in present]
    at = present.get(_CSP)
    if at is None:
        out.append((_CSP, FRAME_ANCESTORS))
    elif b"frame-ancestors" not in out[at][1].lower():
        out[at] = (out[at][0], out[at][1].rstrip(b"; ") + b"; " + FRAME_ANCESTORS)
    if b"cache-control" not in present and not static:
        out.append(NO_STORE)
    return out


def is_static(scope: Scope) -> bool:
    """Whether the request is for a static asset of the web application. Read before the app
    runs: routing rewrites ``root_path`` in the scope as it descends into mounts."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.startswith(STATIC_PREFIX)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        # Not a secret: ``random`` spares an operating-system call (and an interpreter-lock hand-off).
        rid = incoming if _GOOD_ID.match(incoming) else f"{random.getrandbits(128):032x}"
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        static = is_static(scope)
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = security_headers(list(message.get("headers") or []), static=static)
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        metrics.IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
            if response_started:
                raise
            await internal_error()(scope, receive, send_wrapper)
        finally:
            metrics.IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            request_id_var.reset(token)

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float) -> None:
        route: Any = scope.get("route")
        app = scope.get("app")
        # Templates, not raw paths: metric labels stay a bounded set.
        template = (
            route_template(app, route) if route is not None and app is not None else None
        ) or "<unmatched>"
        method = scope.get("method", "")
        metrics.REQUESTS.labels(method=method, route=template, status=str(status)).inc()
        metrics.LATENCY.labels(method=method, route=template).observe(elapsed)
        principal = scope.get("state", {}).get("principal")
        client = scope.get("client")
        path = scope.get("path", "")
        access_log.log(
            logging.DEBUG if path in _QUIET and status < 400 else logging.INFO,
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,  # never the query string: it can carry secrets
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "user": getattr(principal, "username", None),
                "client": client[0] if client else None,
            },
        )
