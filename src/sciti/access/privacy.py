"""Personal-data protection: retention per record kind, the consent register, cross-boundary transfer rules.

* **Retention**: a period per record kind (``data/retention.yaml``, overridden per instance in the
  ops database). :func:`run_retention` deletes older rows from the lake for real: an Iceberg delete,
  then expiry of every snapshot before it and removal of the files only those snapshots used, so
  the rows are gone from time travel as well. Each table's run is proved in the audit trail.
* **Consent register**: department A may use person P's data held by department B for purpose X
  until a date, with who recorded it; :func:`consent_allows` answers before such a use.
* **Transfer rules**: which record kinds may be sent to which partner administration, with which
  fields; :func:`transfer_allowed` is what the exchange features check before sending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.errors import InvalidInput, NotFound
from sciti.lake import Lake
from sciti.model import ModelError, get_kind, load_kinds
from sciti.ops import session_scope
from sciti.ops.privacy_tables import Consent, RetentionOverride, TransferRule
from sciti.periodic import Periodic
from sciti.settings import Settings

log = logging.getLogger("sciti.privacy")
STORED_AT = "ingested_at"  # the date every row has: when SCITI stored it


class PrivacyError(InvalidInput):
    code = "privacy_error"


# -- retention rules -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionRule:
    kind: str
    days: int
    date_field: str
    basis: str
    origin: str  # "default" (the shipped file) or "override" (this instance)
    table: str


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


@lru_cache(maxsize=8)
def _file_rules(path: str | None) -> dict[str, dict[str, Any]]:
    text = (
        Path(path).read_text("utf-8")
        if path
        else resources.files("sciti.access").joinpath("data/retention.yaml").read_text("utf-8")
    )
    kinds = (yaml.safe_load(text) or {}).get("kinds") or {}
    for kind, spec in kinds.items():
        _check_rule(kind, spec.get("days"), spec.get("date_field"))
    return kinds


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


# -- retention run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionResult:
    """The proof of one table's run, as written to the audit trail."""

    kind: str
    table: str
    cutoff: str
    rows_deleted: int
    delete_snapshot: int | None
    expired_snapshots: list[int] = field(default_factory=list)
    files_removed: int = 0
    snapshots_left: int = 0
    kept_by_refs: list[str] = field(default_factory=list)


def _cutoff_literal(rule: RetentionRule, cutoff: datetime) -> str:
    kind_field = None if rule.date_field == STORED_AT else get_kind(rule.kind).field(rule.date_field)
    if kind_field is not None and kind_field.type == "date":
        return cutoff.date().isoformat()
    return cutoff.isoformat()


def apply_retention(lake: Lake, rule: RetentionRule, *, now: datetime | None = None) -> RetentionResult:
    """Delete the rows older than the rule's period, expire older snapshots and remove their files."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=rule.days)
    literal = _cutoff_literal(rule, cutoff)
    if not lake.exists(rule.table):
        return RetentionResult(rule.kind, rule.table, literal, 0, None)
    condition = f"{rule.date_field} < '{literal}'"
    table = lake.table(rule.table)
    doomed = table.scan(row_filter=condition, selected_fields=("record_id",)).to_arrow().num_rows
    if not doomed:
        return RetentionResult(
            rule.kind, rule.table, literal, 0, None, snapshots_left=len(table.metadata.snapshots)
        )
    before_ids = {s.snapshot_id for s in table.metadata.snapshots}
    snapshot = lake.delete(rule.table, condition)
    # Every older snapshot still holds the deleted rows: expire them all (the new one stays current)
    # and remove every file only they used.
    expired = lake.expire_snapshots(rule.table, timedelta(0), retain_last=1)
    table = lake.table(rule.table)
    left = table.metadata.snapshots
    older_kept = [
        name for name, ref in table.metadata.refs.items() if ref.snapshot_id in before_ids and name != "main"
    ]
    return RetentionResult(
        kind=rule.kind,
        table=rule.table,
        cutoff=literal,
        rows_deleted=doomed,
        delete_snapshot=snapshot,
        expired_snapshots=sorted(before_ids - {s.snapshot_id for s in left}),
        files_removed=expired.removed.files,
        snapshots_left=len(left),
        kept_by_refs=older_kept,
    )


def run_retention(
    settings: Settings,
    lake: Lake,
    *,
    actor: str = "retention",
    kinds: list[str] | None = None,
    now: datetime | None = None,
    source: str | None = None,
) -> list[RetentionResult]:
    """Apply every rule (or those of ``kinds``) and write one audit entry per table as proof.

    This is the function a scheduler calls (e.g. once a day from the server or cron with
    ``sciti privacy retention run``); running it twice deletes nothing the second time.
    """
    with session_scope(settings.resolved_ops_db_url) as session:
        rules = retention_rules(settings, session)
    if kinds:
        unknown = set(kinds) - {r.kind for r in rules}
        if unknown:
            raise PrivacyError(
                f"no retention rule for {', '.join(sorted(unknown))}",
                remedy="add one with `sciti privacy retention set KIND DAYS`",
            )
        rules = [r for r in rules if r.kind in kinds]
    results = []
    for rule in rules:
        result = apply_retention(lake, rule, now=now)
        with session_scope(settings.resolved_ops_db_url) as session:
            audit(
                session,
                actor=actor,
                action="retention.run",
                target=f"table:{rule.table}",
                source=source,
                outcome="ok" if not result.kept_by_refs else "partial",
                details={**result.__dict__, "days": rule.days, "date_field": rule.date_field},
            )
        results.append(result)
    return results


class RetentionSchedule(Periodic):
    """Runs :func:`run_retention` every ``settings.retention_every_hours`` (the server's background jobs)."""

    def __init__(self, settings: Settings, lake: Lake, *, first_delay: float = 60.0):
        super().__init__("sciti-retention", first_delay=first_delay, what="retention run", log=log)
        self.settings, self.lake = settings, lake

    def job(self) -> None:
        run_retention(self.settings, self.lake, actor="retention-schedule", source="server")

    def period(self) -> float:
        return self.settings.retention_every_hours * 3600


# -- consent register ------------------------------------------------------------------------------
def record_consent(
    session: Session,
    *,
    subject_ref: str,
    holder: str,
    recipient: str,
    purpose: str,
    valid_until: date,
    actor: str,
    kinds: list[str] | None = None,
    valid_from: date | None = None,
    evidence: str = "",
) -> Consent:
    valid_from = valid_from or datetime.now(UTC).date()
    if valid_until < valid_from:
        raise PrivacyError(f"consent ends ({valid_until}) before it starts ({valid_from})")
    for name, value in (
        ("subject", subject_ref),
        ("holder", holder),
        ("recipient", recipient),
        ("purpose", purpose),
    ):
        if not value.strip():
            raise PrivacyError(f"a consent needs a {name}")
    for kind in kinds or []:
        _check_rule(kind, 1, None)
    row = Consent(
        subject_ref=subject_ref.strip(),
        holder=holder.strip(),
        recipient=recipient.strip(),
        purpose=purpose.strip(),
        kinds=sorted(set(kinds or [])),
        valid_from=valid_from,
        valid_until=valid_until,
        evidence=evidence,
        recorded_by=actor,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action="consent.record",
        target=f"consent:{row.id}",
        purpose=purpose,
        details={
            "holder": holder,
            "recipient": recipient,
            "until": valid_until.isoformat(),
            "kinds": row.kinds,
        },
    )
    return row


def withdraw_consent(session: Session, consent_id: int, *, actor: str) -> Consent:
    row = session.get(Consent, consent_id)
    if row is None:
        raise NotFound(f"no consent {consent_id}", remedy="list them with `sciti privacy consent list`")
    if row.withdrawn_at is None:
        row.withdrawn_at, row.withdrawn_by = datetime.now(UTC), actor
        audit(session, actor=actor, action="consent.withdraw", target=f"consent:{consent_id}")
    return row


def list_consents(session: Session, *, subject_ref: str | None = None, limit: int = 1000) -> list[Consent]:
    stmt = select(Consent).order_by(Consent.id.desc()).limit(limit)
    if subject_ref:
        stmt = stmt.where(Consent.subject_ref == subject_ref)
    return list(session.scalars(stmt))


def find_consent(
    session: Session,
    *,
    subject_ref: str,
    holder: str,
    recipient: str,
    purpose: str,
    kind: str | None = None,
    on: date | None = None,
) -> Consent | None:
    """The recorded, not withdrawn consent covering this use on ``on`` (today), or None."""
    on = on or datetime.now(UTC).date()
    stmt = select(Consent).where(
        Consent.subject_ref == subject_ref,
        Consent.holder == holder,
        Consent.recipient == recipient,
        Consent.purpose == purpose,
        Consent.valid_from <= on,
        Consent.valid_until >= on,
        Consent.withdrawn_at.is_(None),
    )
    for row in session.scalars(stmt.order_by(Consent.id.desc())):
        if not row.kinds or kind is None or kind in row.kinds:
            return row
    return None


def consent_allows(
    session: Session,
    *,
    subject_ref: str,
    holder: str,
    recipient: str,
    purpose: str,
    kind: str | None = None,
    on: date | None = None,
) -> bool:
    """May ``recipient`` use the data on ``subject_ref`` held by ``holder`` for ``purpose``?

    A department's own data needs no consent; otherwise a matching consent must be in force.
    """
    if holder == recipient:
        return True
    found = find_consent(
        session,
        subject_ref=subject_ref,
        holder=holder,
        recipient=recipient,
        purpose=purpose,
        kind=kind,
        on=on,
    )
    return found is not None


# -- cross-boundary transfer rules ---------------------------------------------------------------------
@dataclass(frozen=True)
class TransferDecision:
    allowed: bool
    reason: str
    refused_fields: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


def set_transfer_rule(
    session: Session,
    *,
    kind: str,
    partner: str,
    fields: list[str],
    actor: str,
    legal_basis: str = "",
    valid_until: date | None = None,
) -> TransferRule:
    _check_rule(kind, 1, None)
    record_kind = get_kind(kind)
    known = set(record_kind.field_names)
    unknown = sorted(set(fields) - known)
    if unknown or not fields:
        raise PrivacyError(
            f"{kind} has no field(s) {', '.join(unknown)}"
            if unknown
            else "a transfer rule lists at least one field",
            remedy=f"fields of {kind}: {', '.join(record_kind.field_names)}",
        )
    row = session.scalars(
        select(TransferRule).where(TransferRule.kind == kind, TransferRule.partner == partner)
    ).first() or TransferRule(kind=kind, partner=partner)
    row.fields, row.legal_basis, row.valid_until = sorted(set(fields)), legal_basis, valid_until
    row.set_by, row.set_at = actor, datetime.now(UTC)
    session.add(row)
    session.flush()
    audit(
        session,
        actor=actor,
        action="transfer_rule.set",
        target=f"partner:{partner}/kind:{kind}",
        details={
            "fields": row.fields,
            "legal_basis": legal_basis,
            "until": valid_until.isoformat() if valid_until else None,
        },
    )
    return row


def remove_transfer_rule(session: Session, *, kind: str, partner: str, actor: str) -> None:
    row = session.scalars(
        select(TransferRule).where(TransferRule.kind == kind, TransferRule.partner == partner)
    ).first()
    if row is None:
        raise NotFound(
            f"no transfer rule for {kind} to {partner}", remedy="list them with `sciti privacy transfer list`"
        )
    session.delete(row)
    audit(session, actor=actor, action="transfer_rule.remove", target=f"partner:{partner}/kind:{kind}")


def list_transfer_rules(session: Session, *, partner: str | None = None) -> list[TransferRule]:
    stmt = select(TransferRule).order_by(TransferRule.partner, TransferRule.kind)
    if partner:
        stmt = stmt.where(TransferRule.partner == partner)
    return list(session.scalars(stmt))


def transfer_allowed(
    session: Session, kind: str, partner: str, fields: list[str] | tuple[str, ...], *, on: date | None = None
) -> TransferDecision:
    """May records of ``kind`` with ``fields`` go to ``partner``? Nothing is allowed unless a rule says so."""
    on = on or datetime.now(UTC).date()
    row = session.scalars(
        select(TransferRule).where(TransferRule.kind == kind, TransferRule.partner == partner)
    ).first()
    if row is None:
        return TransferDecision(False, f"no transfer rule lets {kind} records go to {partner}")
    if row.valid_until is not None and row.valid_until < on:
        return TransferDecision(
            False, f"the transfer rule for {kind} to {partner} ended on {row.valid_until}"
        )
    refused = tuple(sorted(set(fields) - set(row.fields)))
    if refused:
        return TransferDecision(False, f"fields not allowed for {partner}: {', '.join(refused)}", refused)
    return TransferDecision(
        True, f"allowed by the rule set by {row.set_by} ({row.legal_basis or 'no basis given'})"
    )


__all__ = [
    "PrivacyError",
    "RetentionResult",
    "RetentionRule",
    "RetentionSchedule",
    "TransferDecision",
    "apply_retention",
    "consent_allows",
    "find_consent",
    "list_consents",
    "list_transfer_rules",
    "record_consent",
    "remove_transfer_rule",
    "retention_rules",
    "run_retention",
    "set_retention",
    "set_transfer_rule",
    "transfer_allowed",
    "unset_retention",
    "withdraw_consent",
]
