"""Retention rules: a period per record kind (``data/retention.yaml``), overridden per instance.

The shipped file also lists the *copies* SCITI derives from records (risk assessments, the
officers' queue, reference tables): they follow their record when retention deletes it
(:mod:`sciti.access.privacy_retention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.errors import ConfigError, InvalidInput, NotFound
from sciti.model import ModelError, get_kind, load_kinds
from sciti.ops.privacy_tables import RetentionOverride
from sciti.settings import Settings

STORED_AT = "ingested_at"  # the date every row has: when SCITI stored it


class PrivacyError(InvalidInput):
    code = "privacy_error"


@dataclass(frozen=True)
class RetentionRule:
    kind: str
    days: int
    date_field: str
    basis: str
    origin: str  # "default" (the shipped file) or "override" (this instance)
    table: str


@dataclass(frozen=True)
class RecordCopy:
    """A lake table holding copies of records, keyed by (kind, record id): they follow the record."""

    table: str
    kind_column: str
    record_column: str
    dated_by: str  # when the copy was made: an orphan older than the period goes too


@dataclass(frozen=True)
class ValueCopy:
    """A reference table holding values of records' fields (upper-cased): a value no kept record
    holds any more goes with the last record that held it."""

    table: str
    column: str
    fields: dict[str, tuple[str, ...]]  # kind -> the fields whose values the table holds


def _check_rule(kind: str, days: Any, date_field: str | None) -> tuple[int, str]:
    try:
        record_kind = get_kind(kind)
    except ModelError:
        raise PrivacyError(
            f"unknown record kind {kind!r}", remedy=f"use one of: {', '.join(sorted(load_kinds()))}"
        ) from None
    if not isinstance(days, int) or days < 1:
        raise PrivacyError(f"retention of {kind!r} must be a whole number of days >= 1, not {days!r}")
    column = date_field or STORED_AT
    if column != STORED_AT:
        try:
            found = record_kind.field(column)
        except ModelError:
            found = None
        if found is None or found.type not in ("date", "timestamp"):
            dated = [f.name for f in record_kind.fields if f.type in ("date", "timestamp")]
            raise PrivacyError(
                f"{kind}.{column} is not a date or timestamp field",
                remedy=f"use {STORED_AT} or one of: {', '.join(dated) or 'none'}",
            )
    return days, column


def _read(path: str | None) -> dict[str, Any]:
    if not path:
        text = resources.files("sciti.access").joinpath("data/retention.yaml").read_text("utf-8")
        return yaml.safe_load(text) or {}
    # An instance's own file: settings check it exists when they load, but it may have gone since,
    # or not be YAML. Say which setting names it, on one line.
    where = f"retention_file (SCITI_RETENTION_FILE or sciti.toml) names {Path(path).absolute()}"
    try:
        return yaml.safe_load(Path(path).read_text("utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{where}, which cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{where}, which is not YAML text{at}") from None


@lru_cache(maxsize=8)
def _file_rules(path: str | None) -> dict[str, dict[str, Any]]:
    kinds = _read(path).get("kinds") or {}
    for kind, spec in kinds.items():
        _check_rule(kind, spec.get("days"), spec.get("date_field"))
    return kinds


@lru_cache(maxsize=1)
def record_copies() -> tuple[tuple[RecordCopy, ...], tuple[ValueCopy, ...]]:
    """The derived copies, from the shipped file (they are facts of SCITI, not an instance's policy)."""
    copies = _read(None).get("copies") or {}
    by_record = tuple(
        RecordCopy(
            c["table"], c.get("kind_column", "kind"), c.get("record_column", "record_id"), c["dated_by"]
        )
        for c in copies.get("by_record") or []
    )
    by_value = []
    for c in copies.get("by_value") or []:
        fields = {kind: tuple(names) for kind, names in c["fields"].items()}
        for kind, names in fields.items():
            unknown = set(names) - set(get_kind(kind).field_names)
            if unknown:
                raise PrivacyError(f"retention.yaml: {c['table']} names unknown fields of {kind}: {unknown}")
        by_value.append(ValueCopy(c["table"], c["column"], fields))
    return by_record, tuple(by_value)


def personal_kinds() -> list[str]:
    """Record kinds with at least one field classified ``personal``: each needs a retention rule."""
    return sorted(name for name, kind in load_kinds().items() if any(f.personal for f in kind.fields))


def retention_rules(settings: Settings, session: Session) -> list[RetentionRule]:
    """The rules in force: the shipped (or configured) file, then this instance's overrides."""
    rules: dict[str, RetentionRule] = {}
    for kind, spec in _file_rules(str(settings.retention_file) if settings.retention_file else None).items():
        days, column = _check_rule(kind, spec.get("days"), spec.get("date_field"))
        rules[kind] = RetentionRule(
            kind, days, column, spec.get("basis", ""), "default", get_kind(kind).ident
        )
    for row in session.scalars(select(RetentionOverride)):
        shipped = rules.get(row.kind)
        column = row.date_field or (shipped.date_field if shipped else STORED_AT)
        rules[row.kind] = RetentionRule(
            row.kind, row.days, column, row.reason, "override", get_kind(row.kind).ident
        )
    return [rules[k] for k in sorted(rules)]


def set_retention(
    session: Session, kind: str, days: int, *, actor: str, date_field: str | None = None, reason: str = ""
) -> RetentionOverride:
    days, column = _check_rule(kind, days, date_field)
    row = session.get(RetentionOverride, kind) or RetentionOverride(kind=kind)
    before = row.days if row.days is not None else None
    row.days, row.date_field, row.reason = days, date_field, reason  # None: the shipped rule's field
    row.set_by, row.set_at = actor, datetime.now(UTC)
    session.add(row)
    audit(
        session,
        actor=actor,
        action="retention.set",
        target=f"kind:{kind}",
        purpose=reason or None,
        details={"days": days, "date_field": date_field or "as shipped", "before": before},
    )
    return row


def unset_retention(session: Session, kind: str, *, actor: str) -> None:
    row = session.get(RetentionOverride, kind)
    if row is None:
        raise NotFound(
            f"record kind {kind!r} has no retention override", remedy="list them with `retention list`"
        )
    session.delete(row)
    audit(session, actor=actor, action="retention.unset", target=f"kind:{kind}", details={"days": row.days})


__all__ = [
    "STORED_AT",
    "PrivacyError",
    "RecordCopy",
    "RetentionRule",
    "ValueCopy",
    "personal_kinds",
    "record_copies",
    "retention_rules",
    "set_retention",
    "unset_retention",
]
