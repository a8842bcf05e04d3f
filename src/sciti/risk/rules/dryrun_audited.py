"""Dry-runs made by a person: need-to-know checked, run under the caller's policy, audited.

A dry-run reads lake data on the caller's behalf, so it is a read like a query: the caller must be
allowed to read the kind's tables, a rule that names personal or restricted fields needs what the
SQL path needs to show them (:func:`sciti.risk.rules.protected.authorize_dry_run`), the figures
cover the caller's office only, and every attempt — made or refused — is an audit entry
``rule.dry_run`` with the actor, rule, kind, days and figures. The condition text is never copied
into the entry: it may hold a passport number or a name; the entry names the protected fields the
rule reads, not the values it looks for (decision 0080).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from sciti.access import AccessError, Principal, account_state, find_user, principal_of
from sciti.access.audit import audit
from sciti.errors import SCITIError
from sciti.ops import session_scope, utcnow
from sciti.risk.rules.definition import RuleDef
from sciti.risk.rules.dryrun import DryRunResult, dry_run
from sciti.risk.rules.errors import FourEyesViolation
from sciti.risk.rules.protected import DryRunAccess, authorize_dry_run, protected_fields
from sciti.settings import Settings

ACTION = "rule.dry_run"
T = TypeVar("T")


def _details(rule: RuleDef, version: int | None, days: int, until: date | datetime | None) -> dict[str, Any]:
    """What every entry says: the request, and the protected fields named (names, never values)."""
    details: dict[str, Any] = {"version": version, "kind": rule.kind, "days": days}
    if until is not None:
        details["until"] = until.isoformat()
    if version is None:
        details["adhoc"] = True  # a definition not stored: its text is not kept anywhere
    fields = protected_fields(rule)
    if fields:
        details["protected_fields"] = fields
    return details


def _figures(result: DryRunResult, access: DryRunAccess) -> dict[str, Any]:
    out: dict[str, Any] = {
        "records": result.records,
        "hits": result.hits,  # in the unit of records: declarations for declarations (decision 0104)
        "hit_rows": result.hit_rows,  # goods items for declarations
        "known_frauds": result.known_frauds,
        "samples": len(result.sample_ids),
        "path": result.path,
    }
    if result.scope_kept:  # the rule has a scope: how many records it kept
        out["in_scope"] = result.in_scope
    if access.office:
        out["office"] = access.office
    if access.unmasked:
        out["unmask"] = True
        out["personal_unmasked"] = access.unmasked
    return out


def _refused(
    settings: Settings,
    principal_name: str,
    rule: RuleDef,
    details: dict[str, Any],
    exc: SCITIError,
    *,
    purpose: str | None,
    source: str | None,
) -> None:
    """Audit a refused or failed attempt in its own transaction (the caller's rolls back)."""
    outcome = "denied" if isinstance(exc, AccessError) else "failed"  # refused by access, or broke
    with session_scope(settings.resolved_ops_db_url) as session:
        audit(
            session,
            actor=principal_name,
            action=ACTION,
            target=f"rule:{rule.id}",
            purpose=(purpose or "").strip() or None,
            source=source,
            outcome=outcome,
            details={**details, "error": exc.code},  # the code only: a message could quote a value
        )


def _guarded(
    settings: Settings,
    principal: Principal,
    rule: RuleDef,
    details: dict[str, Any],
    run: Callable[[DryRunAccess], T],
    *,
    unmask: bool,
    purpose: str | None,
    source: str | None,
) -> tuple[T, DryRunAccess]:
    try:
        access = authorize_dry_run(principal, rule, unmask=unmask, purpose=purpose)
        return run(access), access
    except SCITIError as exc:
        _refused(settings, principal.username, rule, details, exc, purpose=purpose, source=source)
        raise


def dry_run_as(
    settings: Settings,
    principal: Principal,
    rule: RuleDef,
    days: int = 30,
    *,
    until: date | datetime | None = None,
    unmask: bool = False,
    purpose: str | None = None,
    source: str | None = None,
) -> DryRunResult:
    """Dry-run a definition that is not stored, as ``principal``; audited, figures not kept."""
    details = _details(rule, None, days, until)
    result, access = _guarded(
        settings,
        principal,
        rule,
        details,
        lambda access: dry_run(settings, rule, days, until=until, access=access),
        unmask=unmask,
        purpose=purpose,
        source=source,
    )
    with session_scope(settings.resolved_ops_db_url) as session:
        _audit_done(session, principal, rule.id, access, source, details, result)
    return result


def _principal(session: Session, username: str) -> Principal:
    """The named account a command-line dry-run acts as: usable now (not disabled, expired or
    locked), holding rules.write."""
    user = find_user(session, username)
    if user is None or account_state(session, user) not in ("active", "must_change_password"):
        raise FourEyesViolation(
            f"no enabled account {username!r}",
            remedy="act as an existing user (`--user NAME` on the CLI); list them with `sciti user list`",
        )
    principal = principal_of(user)
    if not principal.can("rules.write"):
        raise FourEyesViolation(
            f"user {username!r} (roles: {', '.join(principal.roles) or 'none'}) may not dry-run rules",
            remedy="act as a user whose role grants rules.write",
            details={"permission": "rules.write"},
        )
    return principal


def dry_run_version(
    settings: Settings,
    session: Session,
    rule_id: str,
    version: int | None = None,
    days: int = 30,
    *,
    actor: str | None = None,
    principal: Principal | None = None,
    until: date | datetime | None = None,
    unmask: bool = False,
    purpose: str | None = None,
    source: str | None = None,
) -> DryRunResult:
    """Dry-run a stored version as ``principal`` (or the named account ``actor``) and keep its figures
    (the approver sees what the author saw, when they may: see ``shown_dry_run``)."""
    from sciti.ops.rules_tables import RuleDryRun
    from sciti.risk.rules.store import definition_of, get_version

    if principal is None:
        principal = _principal(session, actor or "")
    row = get_version(session, rule_id, version)
    rule = definition_of(row)
    details = _details(rule, row.version, days, until)
    result, access = _guarded(
        settings,
        principal,
        rule,
        details,
        lambda access: dry_run(settings, rule, days, until=until, version=row.version, access=access),
        unmask=unmask,
        purpose=purpose,
        source=source,
    )
    session.add(
        RuleDryRun(
            version_id=row.id,
            rule_id=rule_id,
            version=row.version,
            days=days,
            records=result.records,
            hits=result.hits,
            known_frauds=result.known_frauds,
            hit_rate=result.hit_rate,
            result=result.to_dict(),
            actor=principal.username,
            at=utcnow(),
        )
    )
    _audit_done(session, principal, rule_id, access, source, details, result)
    return result


def _audit_done(
    session: Session,
    principal: Principal,
    rule_id: str,
    access: DryRunAccess,
    source: str | None,
    details: dict[str, Any],
    result: DryRunResult,
) -> None:
    """The audit entry of a dry-run that ran: what was asked and the figures, never the values."""
    audit(
        session,
        actor=principal.username,
        action=ACTION,
        target=f"rule:{rule_id}",
        purpose=access.purpose,
        source=source,
        details={**details, **_figures(result, access)},
    )


__all__ = ["ACTION", "dry_run_as", "dry_run_version"]
