"""HTTP push, the part that does not depend on the web framework.

The API router (``sciti.api.routers.ingest``) reads the request body within the size limit and
hands it here. One request body is one batch: the runner fingerprints the bytes, so sending the
same body again is answered ``duplicate`` and stores nothing.

* NDJSON (``application/x-ndjson``): for connectors whose format is ``jsonl``; each line is a
  record, a malformed line is quarantined with its line number, the rest is stored.
* A file (multipart ``file`` field, or a raw body with an ``X-Filename`` header): read with the
  connector's own format (CSV, XML, EDIFACT, ...) exactly as if dropped in its folder.

Every push is its own unit, ``http:<push id>/<file name>`` (``body.ndjson`` when NDJSON comes
without a name), where the push id is the UTC time to the microsecond and 8 random hex digits: two
pushes never share a locator, even of the same file name in the same second.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sciti.acquire.errors import UnitBusy
from sciti.acquire.transports.errors import PayloadTooLarge
from sciti.errors import InvalidInput, NotFound
from sciti.settings import Settings

NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines"}
)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# The names a connector may have (``Connector.name`` and ``.source``): ``wco-dec``, ``demo_x``.
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class UnsupportedPush(InvalidInput):
    code = "unsupported_media_type"
    http_status = 415


def find_connector(settings: Settings, source: str) -> Any:
    """The connector named ``source``, or the only connector whose source name it is."""
    from sciti.acquire import list_connectors, load_connector

    if _NAME.fullmatch(source):
        if (Path(settings.connectors_dir) / source / "connector.yaml").is_file():
            return load_connector(settings, source)  # a malformed definition says so, not "not found"
        matches = [c for c in list_connectors(settings, strict=False) if c.source == source]
        if len(matches) == 1:
            return matches[0]
    raise NotFound(
        f"no connector for source {source!r}",
        remedy="push to /api/v1/ingest/<connector name>, a folder name under the connectors directory",
    )


def safe_filename(name: str | None) -> str | None:
    """The last path part of a client-given file name, without characters that could mislead."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base).strip("._")
    return base[:200] or None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def push(runner: Any, connector: Any, data: bytes, *, content_type: str | None, filename: str | None) -> Any:
    """Ingest one pushed body as one batch and return the runner's BatchResult."""
    kind = media_type(content_type)
    name = safe_filename(filename)
    if kind in NDJSON_TYPES:
        if connector.format != "jsonl":
            raise UnsupportedPush(
                f"connector {connector.name!r} reads {connector.format}, not NDJSON",
                remedy="push the file itself (multipart field `file`, or a raw body with X-Filename)",
            )
        name = name or "body.ndjson"
    elif not name:
        raise UnsupportedPush(
            f"cannot tell what the body is (Content-Type {kind or 'missing'} and no file name)",
            remedy="send NDJSON as application/x-ndjson, or a file as multipart field `file` "
            "or as a raw body with an X-Filename header",
        )
    if not data:
        raise InvalidInput("the request body is empty", remedy="send at least one record")
    result = runner.ingest_bytes(connector, data, f"http:{push_id()}/{name}", transport="http")
    if getattr(result, "status", None) == "busy":  # 409: the same body is being ingested right now
        raise UnitBusy(
            f"the same body is being ingested right now by another process (batch {result.batch_id}); "
            "nothing was done with this request",
            remedy="send it again in a minute: it is then answered `duplicate` once the other ingest "
            "has committed, or ingested if that one stopped",
            details={"batch_id": result.batch_id, "connector": result.connector},
        )
    return result


def push_id() -> str:
    """``push-20261124T081725.123456Z-1a2b3c4d``: when the push came, and unique even within one
    microsecond (so the locators of two pushes never look alike)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"push-{stamp}-{secrets.token_hex(4)}"


def result_json(result: Any) -> dict[str, Any]:
    """The batch result as the API returns it."""
    keys = (
        "batch_id",
        "connector",
        "status",
        "received",
        "stored",
        "quarantined",
        "already_stored",
        "replaced",
        "tables",
    )
    out = {k: getattr(result, k, None) for k in keys}
    error = getattr(result, "error", None)
    if error:
        out["error"] = error
    return out


def check_size(length: int, settings: Settings) -> None:
    if length > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the upload is larger than the limit of {settings.max_upload_bytes} bytes",
            remedy="split the data into several pushes, or raise SCITI_MAX_UPLOAD_BYTES",
            details={"limit": settings.max_upload_bytes},
        )
