"""Connector definitions: one YAML file per source, validated with pydantic into a ``Connector``.

A connector says where data comes from (source name, files glob), how to read it (format and its
options) and, for table formats, how each source row becomes canonical records (``outputs``: one
projection per record kind, values are DuckDB SQL over the normalised source column names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sciti.acquire.errors import ConnectorError
from sciti.model import ModelError, get_kind, load_kinds
from sciti.settings import Settings

DEFINITION_FILE = "connector.yaml"


class Output(BaseModel):
    """One projection of a source row onto a record kind."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    fields: dict[str, str] = Field(description="field name -> DuckDB SQL expression over source columns")
    where: str | None = Field(None, description="optional SQL condition: rows failing it produce no record")

    @field_validator("fields", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # YAML turns `version: 1` into an int; an expression is text, so accept scalars as SQL literals.
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class Connector(BaseModel):
    """A validated connector definition."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    source: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    format: str
    files: str = "*"
    transport: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    kinds: list[str] = Field(default_factory=list)
    outputs: list[Output] = Field(default_factory=list)
    secrets: dict[str, str] = Field(
        default_factory=dict, description="alias -> name of a secret in the secrets store (never a value)"
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="transport-specific settings")
    on_change: Literal["quarantine", "replace"] | None = Field(
        None,
        description="a record whose key is stored with other values: quarantined, or replacing the stored "
        "one (a table updated in place, docs/decisions/0112); unset: quarantined, except that incremental "
        "SQL extraction keeps every version (0012)",
    )
    folder: Path | None = Field(None, exclude=True)

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        from sciti.access.secrets import NAME

        names = {alias: str(name).removeprefix("secret:").strip() for alias, name in value.items()}
        for alias, name in names.items():
            if not NAME.fullmatch(name):
                raise ValueError(
                    f"secrets.{alias} must name a secret in the store (e.g. kcs-db), never hold a value: "
                    "store the value with `sciti secrets put NAME`"
                )
        return names

    @model_validator(mode="after")
    def _check(self) -> Connector:
        from sciti.acquire.registry import FORMATS, TABLE_FORMATS

        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; use one of {sorted(FORMATS)}")
        if self.format in TABLE_FORMATS - {"jsonl"} and not self.outputs:
            raise ValueError(f"format {self.format!r} needs `outputs:` (one projection per record kind)")
        known = load_kinds()
        for kind in [*self.kinds, *(o.kind for o in self.outputs)]:
            if kind not in known:
                raise ValueError(f"unknown record kind {kind!r}; known kinds: {', '.join(sorted(known))}")
        for out in self.outputs:
            record_kind = get_kind(out.kind)
            for name in out.fields:
                try:
                    record_kind.field(name)
                except ModelError as exc:
                    raise ValueError(f"output {out.kind}: {exc}") from None
        if self.on_change == "replace" and not self.outputs:
            raise ValueError(
                "on_change: replace is for rows of a table updated in place and needs `outputs`; a message "
                "(XML, EDIFACT, canonical JSON lines) carries its version in its key: leave on_change unset"
            )
        if not self.kinds:
            self.kinds = [o.kind for o in self.outputs]
        return self

    @property
    def table_style(self) -> bool:
        """Whether rows are mapped by ``outputs`` (columnar path) rather than read as records."""
        return bool(self.outputs)


def _read_definition(path: Path) -> Connector:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConnectorError(f"{path} is not valid YAML: {exc}", remedy="fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise ConnectorError(
            f"{path} does not hold a mapping", remedy="see docs/connectors.md for the format"
        )
    try:
        connector = Connector.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'connector'}: {err['msg']}" for err in exc.errors()
        )
        raise ConnectorError(f"{path} is malformed: {problems}", remedy="see docs/connectors.md") from None
    connector.folder = path.parent
    return connector


def load_connector(settings: Settings, name: str) -> Connector:
    """Read ``<connectors_dir>/<name>/connector.yaml``; a clear error when unknown or malformed."""
    path = Path(settings.connectors_dir) / name / DEFINITION_FILE
    if not path.is_file():
        known = [c.name for c in list_connectors(settings, strict=False)]
        raise ConnectorError(
            f"unknown connector {name!r} (no {path})",
            remedy=f"use one of: {', '.join(known) or 'none defined'}",
        )
    connector = _read_definition(path)
    if connector.name != name:
        raise ConnectorError(f"{path} names itself {connector.name!r}", remedy=f"set `name: {name}`")
    return connector


def list_connectors(settings: Settings, *, strict: bool = True) -> list[Connector]:
    """Every connector defined under ``connectors_dir``, sorted by name."""
    root = Path(settings.connectors_dir)
    found: list[Connector] = []
    for path in sorted(root.glob(f"*/{DEFINITION_FILE}")) if root.is_dir() else []:
        try:
            found.append(_read_definition(path))
        except ConnectorError:
            if strict:
                raise
    return found
