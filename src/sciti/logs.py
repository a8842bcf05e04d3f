"""Structured logs: one JSON object per line on stderr, with the request id, and no secrets.

Every record passes a redaction filter before it is formatted: bearer tokens (ours carry the
``sciti_`` prefix), ``Authorization`` values, Argon2 hashes, passwords in URLs and anything logged
under a key that names a secret (password, token, secret, api key, ...) become ``[REDACTED]``.
Redaction is a safety net, not a licence: code must still not log secrets on purpose.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from sciti.settings import Settings

REDACTED = "[REDACTED]"
request_id_var: ContextVar[str | None] = ContextVar("sciti_request_id", default=None)

_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|api[_-]?key|credential|cookie", re.IGNORECASE
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"sciti_[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s\"']+"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # scheme://user:password@host
    (
        re.compile(
            r"(?i)\b((?:[a-z_]*_)?(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key))"
            r"([\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&}]+)"
        ),
        rf"\1\2{REDACTED}",
    ),
]
# Attributes every LogRecord has; anything else was passed with extra={...} and is logged as a field.
# uvicorn's color_message duplicates the message with terminal colour codes.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}
_OURS = "_sciti_handler"


def redact(text: str) -> str:
    """``text`` with every recognisable secret replaced by [REDACTED]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    """Redact a structured value: a string under a key naming a secret entirely, others by pattern."""
    if isinstance(value, str | bytes) and value and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


class RedactionFilter(logging.Filter):
    """Rewrites each record in place so no handler after it can see a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        for key in list(vars(record)):
            if key not in _STANDARD:
                setattr(record, key, redact_value(key, getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None  # the (redacted) text above replaces it
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    rid = request_id_var.get()
    if rid and "request_id" not in out:
        out["request_id"] = rid
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable variant for a developer's terminal (``log_json = false``)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()} {extra}".rstrip()
        return f"{line}\n{record.exc_text}" if record.exc_text else line


def setup_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record (ours, uvicorn's, libraries') through one redacting handler.

    Idempotent: calling again replaces the handler installed before.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # let uvicorn's records reach our handler
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # pyiceberg says "Defaulting to PyArrow FileIO" at INFO on every table it loads: in a server
    # that is two lines per table per upkeep pass, and says nothing an operator can act on.
    logging.getLogger("pyiceberg.io").setLevel(max(logging.WARNING, root.level))
    return handler
