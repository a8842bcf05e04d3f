"""The ``transport:`` section of a connector definition, validated, plus secret and URL helpers.

A connector YAML names its transport and gives its settings (see docs/transports.md)::

    transport: folder
    settings: {path: kcs, poll_seconds: 2}

    transport: sql
    settings: {url_secret: customs_db, table: declarations, watermark: updated_at, tiebreak: id}

    transport: mqtt
    settings: {host: 127.0.0.1, port: 1883, topic: "elock/+/events", qos: 1}

The one-mapping form ``transport: {type: sql, ...}`` is accepted too, where the loader keeps it.

HTTP push needs no section: every connector accepts pushes once a user has the ``ingest``
permission. Secrets are named, never written in the YAML: ``url: secret:NAME`` (or ``url_secret:
NAME``), ``password: secret:NAME`` (or ``password_secret: NAME``) are resolved from the secrets store
at use time (sciti.access.secrets; the environment variable ``SCITI_SECRET_<NAME>`` for development).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sciti.acquire.transports.errors import TransportConfigError
from sciti.settings import Settings


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderSpec(_Spec):
    """Watched drop folder. ``path`` is relative to ``settings.resolved_drop_dir`` unless absolute."""

    type: Literal["folder"]
    path: str
    poll_seconds: float = Field(2.0, gt=0, description="How often the folder is listed.")
    settle_seconds: float = Field(
        2.0, ge=0, description="A file is complete when size and mtime are unchanged this long."
    )
    require_marker: bool = Field(False, description="Only take NAME when NAME.done exists beside it.")
    attempts: int = Field(
        3, ge=1, description="Rounds a file whose batch fails is retried before it goes to failed/."
    )


class SqlSpec(_Spec):
    """Incremental extraction by a (watermark, tiebreak) cursor."""

    type: Literal["sql"]
    url: str | None = Field(None, description="SQLAlchemy URL without password, or use url_secret.")
    url_secret: str | None = Field(None, description="Name of the secret holding the SQLAlchemy URL.")
    password_secret: str | None = Field(
        None, description="Name of the secret holding the password for ``url`` (rotate it on its own)."
    )
    table: str | None = Field(None, description="Table (or schema.table) to extract; or give query.")
    query: str | None = Field(None, description="SELECT returning the rows; wrapped with the cursor.")
    watermark: str = Field(description="Column that grows on insert and update (timestamp or number).")
    tiebreak: str = Field(description="Unique column ordering rows that share a watermark value.")
    every_seconds: float = Field(60.0, gt=0)
    batch_rows: int = Field(50_000, gt=0, description="Most rows in one extraction window (one batch).")
    lag_seconds: float = Field(
        0.0, ge=0, description="Only take rows whose watermark is older than the source's now minus this."
    )

    @model_validator(mode="before")
    @classmethod
    def _references(cls, data: Any) -> Any:
        return _secret_references(data, {"url": "url_secret", "password": "password_secret"})

    @model_validator(mode="after")
    def _one_source(self) -> SqlSpec:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give exactly one of url and url_secret")
        if self.password_secret and self.url_secret:
            raise ValueError("password_secret goes with url (the URL without password), not url_secret")
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table and query")
        for name in (self.watermark, self.tiebreak, *(self.table or "").split(".")):
            if name and not _IDENT.fullmatch(name):
                raise ValueError(f"{name!r} is not a plain SQL identifier")
        if self.query and ":" in re.sub(r"::|'[^']*'", "", self.query):
            raise ValueError(
                "the query must not use bind parameters: SCITI adds the cursor condition itself "
                "(WHERE watermark > last OR (watermark = last AND tiebreak > last_key))"
            )
        return self


class MqttSpec(_Spec):
    """MQTT subscription; each message is staged durably before it is acknowledged."""

    type: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str | tuple[str, ...] = Field(
        description="Topic filter to subscribe to, or a list of them (e.g. elock/+/gps and elock/+/event)."
    )
    qos: Literal[0, 1, 2] = 1
    client_id: str | None = Field(
        None,
        description="Stable id so the broker keeps our session. Default sciti-<instance id>-<connector>.",
    )
    username: str | None = None
    password_secret: str | None = None
    id_field: str | None = Field(
        "message_id",
        description="JSON field holding the sender's message id; absent -> hash of topic+payload.",
    )
    keepalive: int = 30
    dedupe_seconds: float = Field(
        3600.0, ge=0, description="How long ids of flushed messages are kept to drop redeliveries."
    )

    @model_validator(mode="before")
    @classmethod
    def _references(cls, data: Any) -> Any:
        return _secret_references(data, {"password": "password_secret"})

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic filter subscribed to."""
        return (self.topic,) if isinstance(self.topic, str) else self.topic


TransportSpec = Annotated[FolderSpec | SqlSpec | MqttSpec, Field(discriminator="type")]


class _Holder(BaseModel):
    transport: TransportSpec


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_transport(raw: dict[str, Any] | None, *, connector: str) -> FolderSpec | SqlSpec | MqttSpec | None:
    """Validate a raw ``transport:`` mapping; None when the connector has none."""
    if raw is None:
        return None
    if hasattr(raw, "model_dump"):  # the connector loader may already hold it as a model
        raw = raw.model_dump()
    try:
        return _Holder.model_validate({"transport": raw}).transport
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'transport'}: {err['msg']}" for err in exc.errors()
        )
        raise TransportConfigError(
            f"connector {connector!r}: transport section is invalid: {problems}",
            remedy="see docs/transports.md for the fields of each transport type",
        ) from None


def transport_spec(settings: Settings, connector: Any) -> FolderSpec | SqlSpec | MqttSpec | None:
    """The transport of a loaded connector: ``transport: TYPE`` + ``settings:``, or one mapping."""
    raw = getattr(connector, "transport", None)
    if raw is None and getattr(connector, "folder", None) is None:
        # A connector object that did not come from the loader: read its YAML directly.
        path = Path(settings.connectors_dir) / connector.name / "connector.yaml"
        if path.is_file():
            raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("transport")
    if isinstance(raw, str):
        if raw in ("http", "file", "none"):  # push and one-off ingest need nothing long-lived
            return None
        raw = {"type": raw, **(getattr(connector, "settings", None) or {})}
    return parse_transport(raw, connector=connector.name)


def _secret_references(data: Any, fields: dict[str, str]) -> Any:
    """Turn ``field: secret:NAME`` into ``field_secret: NAME``; refuse a credential written in clear."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for field, target in fields.items():
        value = data.get(field)
        if value is None:
            continue
        is_ref = isinstance(value, str) and value.startswith("secret:")
        name = value[len("secret:") :].strip() if is_ref else None
        if name:
            data.pop(field)
            data[target] = name
        elif field == "password":
            raise ValueError("a password is never written in a connector: give `password: secret:NAME`")
    return data


def secret(name: str, settings: Settings | None = None, *, actor: str = "transport") -> str:
    """The value of a named secret, from the secrets store (cached briefly); never logged.

    Without ``settings`` only the environment (``SCITI_SECRET_<NAME>``) is consulted.
    """
    if settings is not None:
        from sciti.access.secrets import resolve

        return resolve(settings, name, actor=actor)
    var = "SCITI_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    value = os.environ.get(var)
    if not value:
        raise TransportConfigError(
            f"secret {name!r} is not set", remedy=f"set the environment variable {var} for the server process"
        )
    return value


_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")


def redact(text: str) -> str:
    """Replace any password inside a URL (scheme://user:password@host) with ``***``."""
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<at>", text)


def resolve_drop_path(settings: Settings, spec: FolderSpec) -> Path:
    path = Path(spec.path)
    return path if path.is_absolute() else settings.resolved_drop_dir / path
