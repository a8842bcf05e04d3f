"""Rules in the operational database: versions, the four-eyes workflow, history and diffs.

A version is immutable; its workflow is draft -> submitted -> approved | rejected, and a newer
version supersedes older ones still pending. Only an approved version takes effect, and only a
user other than its author who holds ``rules.approve`` may approve it. Every step is audited and
raises the kind's rules generation, which invalidates compiled rules everywhere.

Steps on one rule happen one at a time, on SQLite as on PostgreSQL (decision 0092): each starts
by writing the rule's row (:func:`_lock`), and each status change is a conditional UPDATE that
must change exactly one row (:func:`_move`). Of two decisions on one version at the same moment,
one goes through and the other is refused (RuleWorkflowError, HTTP 409).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from sciti.access import find_user, permissions_of
from sciti.access.audit import audit
from sciti.ops import utcnow
from sciti.ops.rules_tables import Rule, RuleDecision, RuleDryRun, RulesGeneration, RuleVersion
from sciti.risk.rules.definition import RuleDef, canonical_yaml, parse_rule
from sciti.risk.rules.errors import FourEyesViolation, NotTheAuthor, RuleNotFound, RuleWorkflowError
from sciti.risk.rules.protected import check_may_name, protected_fields

PENDING = ("draft", "submitted")


@dataclass(frozen=True)
class History:
    rule: Rule
    versions: list[RuleVersion]
    decisions: list[RuleDecision]


def _actor(session: Session, username: str, permission: str) -> str:
    """The acting account's name; it must exist, be enabled and hold ``permission``."""
    return _account(session, username, permission)[0]


def _account(session: Session, username: str, permission: str) -> tuple[str, frozenset[str]]:
    """The acting account's name and permissions; it must exist, be enabled and hold ``permission``."""
    user = find_user(session, username)
    if user is None or user.disabled:
        raise FourEyesViolation(
            f"no enabled account {username!r}",
            remedy="act as an existing user (`--user NAME` on the CLI); list them with `sciti user list`",
        )
    if permission not in permissions_of(user.roles or []):
        raise FourEyesViolation(
            f"user {user.username!r} (roles: {', '.join(user.roles or []) or 'none'}) may not {permission}",
            remedy=f"act as a user whose role grants {permission}",
            details={"permission": permission},
        )
    return user.username, permissions_of(user.roles or [])


def bump_generation(session: Session, kind: str) -> None:
    """Raise the kind's generation (an atomic UPDATE; the row is created the first time)."""
    bumped = session.execute(
        update(RulesGeneration)
        .where(RulesGeneration.kind == kind)
        .values(value=RulesGeneration.value + 1, changed_at=utcnow())
    )
    if getattr(bumped, "rowcount", 0) == 0:
        try:
            with session.begin_nested():  # another process may create it at the same moment
                session.add(RulesGeneration(kind=kind, value=1, changed_at=utcnow()))
        except IntegrityError:
            bump_generation(session, kind)


def rules_generation(session: Session, kind: str | None = None) -> int:
    """A number that changes whenever the rules in effect for ``kind`` (or any kind) may have changed."""
    query = select(RulesGeneration.value)
    if kind is not None:
        query = query.where(RulesGeneration.kind == kind)
    return sum(session.scalars(query))


def _lock(session: Session, rule_id: str) -> None:
    """Hold the rule's row until the transaction ends: one workflow step on a rule at a time.

    A write, not SELECT ... FOR UPDATE: that locks nothing on SQLite, where pysqlite begins the
    transaction only at the first write, so parallel steps all read the state before any of them
    and all went through. An UPDATE takes the row lock on PostgreSQL and the write lock on SQLite
    (as the audit head does); every read after it sees the steps committed before.
    """
    session.execute(
        update(Rule)
        .where(Rule.id == rule_id)
        .values(latest_version=Rule.latest_version)
        .execution_options(synchronize_session=False)
    )


def get_rule(session: Session, rule_id: str, *, lock: bool = False) -> Rule:
    """The rule; ``lock`` holds its row until the transaction ends (one workflow step at a time)."""
    if lock:
        _lock(session, rule_id)
    rule = session.get(Rule, rule_id, populate_existing=lock)
    if rule is None:
        raise RuleNotFound(f"no rule {rule_id!r}")
    return rule


def _move(session: Session, row: RuleVersion, to: str, *, only_from: tuple[str, ...]) -> bool:
    """Set the version's status to ``to`` if it is still one of ``only_from``; False if it was not.

    A conditional UPDATE whose row count decides: a step that lost a race changes nothing, however
    the database locks (the rule's lock makes this the second wall, not the only one).
    """
    moved = session.execute(
        update(RuleVersion)
        .where(RuleVersion.id == row.id, RuleVersion.status.in_(only_from))
        .values(status=to)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        return False
    set_committed_value(row, "status", to)
    return True


def _changed_meanwhile(session: Session, row: RuleVersion, step: str) -> RuleWorkflowError:
    now = session.scalar(select(RuleVersion.status).where(RuleVersion.id == row.id))
    return RuleWorkflowError(
        f"version {row.version} of rule {row.rule_id!r} is {now} now: another step on it went through "
        f"while this {step} ran",
        remedy="see the rule's history",
        details={"version": row.version, "status": now},
    )


def get_version(session: Session, rule_id: str, version: int | None = None) -> RuleVersion:
    """One version (the latest when ``version`` is None)."""
    rule = get_rule(session, rule_id)
    number = rule.latest_version if version is None else version
    row = session.scalar(
        select(RuleVersion).where(RuleVersion.rule_id == rule_id, RuleVersion.version == number)
    )
    if row is None:
        raise RuleNotFound(
            f"rule {rule_id!r} has no version {number}",
            remedy=f"it has versions 1 to {rule.latest_version}",
        )
    return row


def definition_of(row: RuleVersion) -> RuleDef:
    return parse_rule(row.text)


def list_rules(session: Session, kind: str | None = None) -> list[Rule]:
    query = select(Rule).order_by(Rule.kind, Rule.id)
    if kind:
        query = query.where(Rule.kind == kind)
    return list(session.scalars(query))


def _record(session: Session, row: RuleVersion, decision: str, actor: str, comment: str) -> None:
    session.add(
        RuleDecision(
            version_id=row.id,
            rule_id=row.rule_id,
            version=row.version,
            decision=decision,
            actor=actor,
            comment=comment,
            at=utcnow(),
        )
    )


def _add_version(session: Session, rule: Rule, definition: RuleDef, actor: str, comment: str) -> RuleVersion:
    """The next version of ``rule`` (whose row the caller has locked), superseding pending ones."""
    text = canonical_yaml(definition)
    number = rule.latest_version + 1
    claimed = session.execute(  # the number is taken only if nobody took it first
        update(Rule)
        .where(Rule.id == rule.id, Rule.latest_version == rule.latest_version)
        .values(latest_version=number, title=definition.title)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise RuleWorkflowError(
            f"another version of rule {rule.id!r} was stored while this one was",
            remedy="read the rule's latest version and store yours again",
        )
    set_committed_value(rule, "latest_version", number)
    set_committed_value(rule, "title", definition.title)
    pending_rows = session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule.id, RuleVersion.status.in_(PENDING))
    ).all()
    for pending in pending_rows:
        if _move(session, pending, "superseded", only_from=PENDING):
            _record(session, pending, "supersede", actor, f"replaced by version {number}")
    row = RuleVersion(
        rule_id=rule.id,
        version=number,
        kind=definition.kind,
        definition=definition.to_dict(),
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        enabled=definition.enabled,
        author=actor,
        comment=comment,
        status="draft",
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _record(session, row, "create", actor, comment)
    details: dict[str, Any] = {"version": row.version, "sha256": row.text_sha256}
    fields = protected_fields(definition)
    if fields:  # which rules read personal or restricted fields (names only, never the values)
        details["protected_fields"] = fields
    audit(
        session,
        actor=actor,
        action="rule.create" if row.version == 1 else ("rule.retire" if not row.enabled else "rule.version"),
        target=f"rule:{rule.id}",
        details=details,
    )
    return row


def save_rule(
    session: Session, source: str | dict[str, Any], *, actor: str, comment: str = "", only_new: bool = False
) -> RuleVersion:
    """Store a definition: a new rule (version 1) or a new draft version of an existing one
    (``only_new``: refuse one that exists, RuleWorkflowError).

    A rule that names personal or restricted fields needs an author who may read them in clear
    (ProtectedFieldsRefused otherwise): such a rule is a standing lookup of those fields.
    """
    actor, permissions = _account(session, actor, "rules.write")
    definition = parse_rule(source, author=actor)
    check_may_name(actor, permissions, definition, step="write")
    _lock(session, definition.id)
    rule = session.get(Rule, definition.id, populate_existing=True)
    if rule is None:
        rule = Rule(
            id=definition.id,
            kind=definition.kind,
            title=definition.title,
            created_by=actor,
            created_at=utcnow(),
            latest_version=0,
        )
        session.add(rule)
        try:
            session.flush()
        except IntegrityError:  # PostgreSQL: a row that does not exist yet cannot be locked
            raise _exists(definition.id, "was created by someone else at the same moment") from None
    elif only_new:
        raise _exists(definition.id, "exists already")
    else:
        if rule.kind != definition.kind:
            raise RuleWorkflowError(
                f"rule {rule.id!r} is a {rule.kind} rule; a version cannot make it a {definition.kind} rule",
                remedy="give the rule for the other kind its own id",
            )
        latest = get_version(session, rule.id)
        if latest.text == canonical_yaml(replace(definition, author=latest.author)) and latest.status in (
            *PENDING,
            "approved",
        ):
            raise RuleWorkflowError(
                f"version {latest.version} of rule {rule.id!r} already says exactly this",
                remedy="change the definition, or submit the existing version",
                details={"version": latest.version},
            )
    return _add_version(session, rule, definition, actor, comment)


def _exists(rule_id: str, what: str) -> RuleWorkflowError:
    return RuleWorkflowError(
        f"rule {rule_id!r} {what}", remedy="add a version to it instead (POST .../versions)"
    )


def create_rule(
    session: Session, source: str | dict[str, Any], *, actor: str, comment: str = ""
) -> RuleVersion:
    """A new rule; refuses an id that exists (use ``new_version``)."""
    data_id = parse_rule(source).id
    if session.get(Rule, data_id) is not None:
        raise _exists(data_id, "exists already")
    return save_rule(session, source, actor=actor, comment=comment, only_new=True)


def new_version(
    session: Session, rule_id: str, source: str | dict[str, Any], *, actor: str, comment: str = ""
) -> RuleVersion:
    get_rule(session, rule_id)
    if parse_rule(source).id != rule_id:
        raise RuleWorkflowError(
            f"the definition's id is not {rule_id!r}", remedy="keep `id:` the same in every version of a rule"
        )
    return save_rule(session, source, actor=actor, comment=comment)


def retire(session: Session, rule_id: str, *, actor: str, comment: str = "") -> RuleVersion:
    """A version that switches the rule off; like any version it takes effect once approved."""
    rule = get_rule(session, rule_id, lock=True)
    base = get_version(session, rule_id, rule.effective_version or rule.latest_version)
    definition = replace(definition_of(base), enabled=False)
    actor = _actor(session, actor, "rules.write")  # switching a rule off reads nothing: no field check
    return _add_version(session, rule, replace(definition, author=actor), actor, comment or "retire")


def submit(session: Session, rule_id: str, version: int, *, actor: str, comment: str = "") -> RuleVersion:
    """Ask for approval of a draft. Only its author submits it (NotTheAuthor otherwise): a version
    goes to the approver as its author's, and someone else's draft may not be finished. Anyone
    holding rules.write who wants it approved stores their own version (superseding the draft) and
    submits that."""
    actor = _actor(session, actor, "rules.write")
    get_rule(session, rule_id, lock=True)
    row = get_version(session, rule_id, version)
    if row.author != actor:
        raise NotTheAuthor(
            f"version {version} of rule {rule_id!r} was written by {row.author!r}: only its author "
            "submits it",
            remedy=f"ask {row.author!r} to submit it, or store your own version of the rule (you are then "
            "its author) and submit that",
            details={"author": row.author},
        )
    if row.status != "draft":
        raise RuleWorkflowError(
            f"version {version} of rule {rule_id!r} is {row.status}, not a draft",
            remedy="only drafts can be submitted for approval",
        )
    if not _move(session, row, "submitted", only_from=("draft",)):
        raise _changed_meanwhile(session, row, "submission")
    _record(session, row, "submit", actor, comment)
    audit(session, actor=actor, action="rule.submit", target=f"rule:{rule_id}", details={"version": version})
    return row


def _decide(
    session: Session, rule_id: str, version: int, actor: str, comment: str, decision: str
) -> RuleVersion:
    actor = _actor(session, actor, "rules.approve")
    get_rule(session, rule_id, lock=True)  # one decision at a time: the second sees the first's status
    row = get_version(session, rule_id, version)
    if row.author == actor:
        raise FourEyesViolation(
            f"{actor!r} wrote version {version} of rule {rule_id!r} and cannot {decision} it",
            remedy=f"a different user holding the rules.approve permission must {decision} this version",
            details={"author": row.author},
        )
    if row.status != "submitted":
        raise RuleWorkflowError(
            f"version {version} of rule {rule_id!r} is {row.status}; only a submitted version can be decided",
            remedy="the author submits the draft first"
            if row.status == "draft"
            else "see the rule's history",
        )
    return row


def audit_refusal(
    session: Session,
    *,
    actor: str,
    rule_id: str,
    version: int | None,
    decision: str,
    reason: str = "four eyes",
    source: str | None = None,
) -> None:
    """Record a refused step (submit, approve, reject, create, version), in a fresh transaction:
    the refused one rolls back. ``reason`` says which check refused it, never the rule's values;
    ``source`` is the client (``cli`` on the command line)."""
    audit(
        session,
        actor=actor,
        action=f"rule.{decision}",
        target=f"rule:{rule_id}",
        source=source,
        outcome="denied",
        details={"version": version, "reason": reason},
    )


def approve(session: Session, rule_id: str, version: int, *, actor: str, comment: str = "") -> RuleVersion:
    """Four eyes: put a submitted version into effect (approver != author, holds rules.approve).

    The approver of a rule that names personal or restricted fields must be allowed to read them in
    clear (ProtectedFieldsRefused): approving puts a lookup of those fields over every record.
    """
    row = _decide(session, rule_id, version, actor, comment, "approve")
    if row.enabled:  # a version that retires the rule reads nothing
        _, permissions = _account(session, actor, "rules.approve")
        check_may_name(actor, permissions, definition_of(row), step="approve")
    rule = get_rule(session, rule_id)
    if rule.effective_version is not None and rule.effective_version > version:
        raise RuleWorkflowError(
            f"version {rule.effective_version} of rule {rule_id!r} is newer and already in effect",
            remedy="approve a newer version instead",
        )
    if not _move(session, row, "approved", only_from=("submitted",)):
        raise _changed_meanwhile(session, row, "approval")
    if rule.effective_version is not None:
        old = get_version(session, rule_id, rule.effective_version)
        if not _move(session, old, "replaced", only_from=("approved",)):
            raise _changed_meanwhile(session, old, "approval")
    row.decided_by = find_user(session, actor).username  # type: ignore[union-attr]
    row.decided_at = utcnow()
    rule.effective_version = version
    _record(session, row, "approve", row.decided_by, comment)
    audit(
        session,
        actor=row.decided_by,
        action="rule.approve",
        target=f"rule:{rule_id}",
        details={"version": version},
    )
    bump_generation(session, row.kind)
    return row


def reject(session: Session, rule_id: str, version: int, *, actor: str, comment: str = "") -> RuleVersion:
    row = _decide(session, rule_id, version, actor, comment, "reject")
    if not _move(session, row, "rejected", only_from=("submitted",)):
        raise _changed_meanwhile(session, row, "rejection")
    row.decided_by = find_user(session, actor).username  # type: ignore[union-attr]
    row.decided_at = utcnow()
    _record(session, row, "reject", row.decided_by, comment)
    audit(
        session,
        actor=row.decided_by,
        action="rule.reject",
        target=f"rule:{rule_id}",
        details={"version": version},
    )
    return row


def history(session: Session, rule_id: str) -> History:
    rule = get_rule(session, rule_id)
    versions = list(
        session.scalars(
            select(RuleVersion).where(RuleVersion.rule_id == rule_id).order_by(RuleVersion.version)
        )
    )
    decisions = list(
        session.scalars(select(RuleDecision).where(RuleDecision.rule_id == rule_id).order_by(RuleDecision.id))
    )
    return History(rule, versions, decisions)


def diff(session: Session, rule_id: str, old: int, new: int) -> str:
    """Unified diff of two versions' canonical YAML ('' when they say the same)."""
    a, b = get_version(session, rule_id, old), get_version(session, rule_id, new)
    lines = difflib.unified_diff(
        a.text.splitlines(keepends=True),
        b.text.splitlines(keepends=True),
        fromfile=f"{rule_id} v{old}",
        tofile=f"{rule_id} v{new}",
    )
    return "".join(lines)


def effective_versions(session: Session, kind: str) -> list[RuleVersion]:
    """The approved version in effect of every rule of ``kind`` (retired ones included; callers skip them)."""
    query = (
        select(RuleVersion)
        .join(Rule, (Rule.id == RuleVersion.rule_id) & (Rule.effective_version == RuleVersion.version))
        .where(Rule.kind == kind)
        .order_by(RuleVersion.rule_id)
    )
    return list(session.scalars(query))


def as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# Every rule time is UTC. SQLite gives a stored time back without its zone (PostgreSQL keeps it), so
# a version just written answered `...Z` and the same version read back answered a bare local-looking
# time. Times of the rule tables are made UTC-aware as they are loaded, unchanged for the session.
_TIMES: dict[type, tuple[str, ...]] = {
    Rule: ("created_at",),
    RuleVersion: ("created_at", "decided_at"),
    RuleDecision: ("at",),
    RuleDryRun: ("at",),
}


def _times_in_utc(target: Any, *_: Any) -> None:
    for name in _TIMES[type(target)]:
        value = target.__dict__.get(name)
        if isinstance(value, datetime) and value.tzinfo is None:
            set_committed_value(target, name, as_utc(value))


for _table in _TIMES:
    event.listen(_table, "load", _times_in_utc)
    event.listen(_table, "refresh", _times_in_utc)


__all__ = [
    "History",
    "audit_refusal",
    "approve",
    "bump_generation",
    "create_rule",
    "definition_of",
    "diff",
    "effective_versions",
    "get_rule",
    "get_version",
    "history",
    "list_rules",
    "new_version",
    "reject",
    "retire",
    "rules_generation",
    "save_rule",
    "submit",
]
