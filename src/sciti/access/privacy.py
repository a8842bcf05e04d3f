"""Personal-data protection: retention per record kind, the consent register, cross-boundary transfer rules.

* **Retention**: a period per record kind (``data/retention.yaml``, overridden per instance in the
  ops database; :mod:`sciti.access.privacy_rules`). :func:`run_retention`
  (:mod:`sciti.access.privacy_retention`) deletes older rows from the lake for real, with every copy
  SCITI derived from them (risk assessments, the officers' queue, reference tables) and, once no
  kept row needs it, the received file they came from (:mod:`sciti.access.privacy_objects`). Each
  step is proved in the audit trail.
* **Consent register**: department A may use person P's data held by department B for purpose X
  until a date, with who recorded it; :func:`consent_allows` answers before such a use.
* **Transfer rules**: which record kinds may be sent to which partner administration, with which
  fields; :func:`transfer_allowed` is what the exchange features check before sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access.audit import audit
from sciti.access.privacy_objects import ObjectSweep, sweep_objects
from sciti.access.privacy_retention import (
    RetentionResult,
    RetentionRun,
    RetentionSchedule,
    apply_retention,
    run_retention,
)
from sciti.access.privacy_rules import (
    STORED_AT,
    PrivacyError,
    RetentionRule,
    _check_rule,
    personal_kinds,
    record_copies,
    retention_rules,
    set_retention,
    unset_retention,
)
from sciti.errors import NotFound
from sciti.model import get_kind
from sciti.ops.privacy_tables import Consent, TransferRule


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
    "STORED_AT",
    "ObjectSweep",
    "PrivacyError",
    "RetentionResult",
    "RetentionRule",
    "RetentionRun",
    "RetentionSchedule",
    "TransferDecision",
    "apply_retention",
    "consent_allows",
    "find_consent",
    "list_consents",
    "list_transfer_rules",
    "personal_kinds",
    "record_copies",
    "record_consent",
    "remove_transfer_rule",
    "retention_rules",
    "run_retention",
    "set_retention",
    "set_transfer_rule",
    "sweep_objects",
    "transfer_allowed",
    "unset_retention",
    "withdraw_consent",
]
