"""sciti CLI: ``sciti privacy retention|consent|transfer ...`` — personal-data protection.

Changes are made as a named account holding ``privacy.manage`` (``--user`` or ``SCITI_USER``) and
audited. ``sciti privacy retention run`` is what a scheduler (cron, a systemd timer) calls daily.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sciti.access import privacy
from sciti.cli.common import console, fail, lake
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError
from sciti.ops import session_scope

privacy_app = typer.Typer(
    help="Personal-data protection: retention, the consent register, transfer rules.", no_args_is_help=True
)
retention_app = typer.Typer(
    help="Retention periods per record kind, and the deletion run.", no_args_is_help=True
)
consent_app = typer.Typer(
    help="The consent register: who may use whose data held by whom.", no_args_is_help=True
)
transfer_app = typer.Typer(
    help="Which record kinds and fields may go to which partner.", no_args_is_help=True
)
privacy_app.add_typer(retention_app, name="retention")
privacy_app.add_typer(consent_app, name="consent")
privacy_app.add_typer(transfer_app, name="transfer")

User = Annotated[str, typer.Option("--user", "-u", envvar="SCITI_USER", help="Account the CLI acts as.")]


def _actor(user: str) -> str:
    from sciti.cli.secrets import _caller

    return _caller(user, "privacy.manage").name


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date: use YYYY-MM-DD")


def _url() -> str:
    return get_settings().resolved_ops_db_url


# -- retention ---------------------------------------------------------------------------------
@retention_app.command("list")
def retention_list(user: User = "") -> None:
    """The retention rules in force (shipped defaults and this instance's overrides)."""
    _actor(user)
    with session_scope(_url()) as s:
        rules = privacy.retention_rules(get_settings(), s)
    out = Table(title="Retention")
    for col in ("kind", "days", "counted from", "origin", "table", "basis"):
        out.add_column(col, overflow="fold")
    for r in rules:
        out.add_row(r.kind, str(r.days), r.date_field, r.origin, r.table, r.basis)
    console.print(out)


@retention_app.command("set")
def retention_set(
    kind: str,
    days: int,
    user: User = "",
    date_field: Annotated[
        str | None, typer.Option("--date-field", help="Field the period counts from.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (law, decision reference).")] = "",
) -> None:
    """Override the retention period of a record kind."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            privacy.set_retention(s, kind, days, actor=actor, date_field=date_field, reason=reason)
    except SCITIError as exc:
        fail(exc)
    console.print(f"{kind}: kept {days} days", highlight=False)


@retention_app.command("unset")
def retention_unset(kind: str, user: User = "") -> None:
    """Back to the shipped retention period of a record kind."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            privacy.unset_retention(s, kind, actor=actor)
    except SCITIError as exc:
        fail(exc)
    console.print(f"{kind}: override removed", highlight=False)


@retention_app.command("run")
def retention_run(
    user: User = "",
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only this kind (repeat).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete rows past their period from the lake, expire old snapshots, remove their files; audited."""
    actor = _actor(user)
    s = get_settings()
    try:
        results = privacy.run_retention(s, lake(s), actor=actor, kinds=kind, source="cli")
    except SCITIError as exc:
        fail(exc)
    files = results.objects
    if as_json:
        for r in results:
            typer.echo(json.dumps(r.__dict__))
        if files is not None:
            typer.echo(json.dumps({"files": files.details()}))
        return
    out = Table(title="Retention run")
    for col in ("table", "cutoff", "rows deleted", "copies deleted", "snapshots expired", "files removed"):
        out.add_column(col)
    for r in results:
        copies = ", ".join(f"{table} {n:,}" for table, n in r.copies.items() if n) or "0"
        out.add_row(
            r.table,
            r.cutoff,
            f"{r.rows_deleted:,}",
            copies,
            str(len(r.expired_snapshots)),
            str(r.files_removed + r.copy_files_removed),
        )
    console.print(out)
    if files is not None:
        console.print(
            f"received files: {files.objects_deleted:,} deleted ({files.bytes_freed:,} bytes) with the "
            f"last of their rows, {files.quarantine_deleted:,} quarantine entries deleted; "
            f"{files.held:,} kept while some of their rows are inside their period",
            highlight=False,
        )
        for key, until in sorted(files.held_until.items())[:5]:
            console.print(f"  kept {key[:16]}… until {until or 'its last row passes'}", highlight=False)
    kept = [f"{r.table} ({', '.join(r.kept_by_refs)})" for r in results if r.kept_by_refs]
    if kept:
        fail(f"old snapshots are kept by tags or branches, so deleted rows stay reachable: {'; '.join(kept)}")


# -- consent -----------------------------------------------------------------------------------------
@consent_app.command("record")
def consent_record(
    subject: Annotated[str, typer.Option("--subject", help="The person, e.g. P:<passport number>.")],
    holder: Annotated[str, typer.Option("--holder", help="Department that holds the data.")],
    recipient: Annotated[str, typer.Option("--recipient", help="Department that may use it.")],
    purpose: Annotated[str, typer.Option("--purpose")],
    until: Annotated[str, typer.Option("--until", help="Last day (YYYY-MM-DD).")],
    user: User = "",
    since: Annotated[str | None, typer.Option("--from", help="First day; default today.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Record kind covered (repeat).")] = None,
    evidence: Annotated[str, typer.Option("--evidence", help="Where the signed consent is kept.")] = "",
) -> None:
    """Record a consent."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            row = privacy.record_consent(
                s,
                subject_ref=subject,
                holder=holder,
                recipient=recipient,
                purpose=purpose,
                valid_until=_day(until) or date.today(),
                valid_from=_day(since),
                kinds=kind,
                evidence=evidence,
                actor=actor,
            )
            consent_id = row.id
    except SCITIError as exc:
        fail(exc)
    console.print(f"consent {consent_id} recorded", highlight=False)


@consent_app.command("withdraw")
def consent_withdraw(consent_id: int, user: User = "") -> None:
    """Withdraw a consent (it stays in the register, marked withdrawn)."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            privacy.withdraw_consent(s, consent_id, actor=actor)
    except SCITIError as exc:
        fail(exc)
    console.print(f"consent {consent_id} withdrawn", highlight=False)


@consent_app.command("list")
def consent_list(user: User = "", subject: Annotated[str | None, typer.Option("--subject")] = None) -> None:
    """The consent register, newest first."""
    _actor(user)
    out = Table(title="Consents")
    for col in (
        "id",
        "subject",
        "holder",
        "recipient",
        "purpose",
        "kinds",
        "from",
        "until",
        "by",
        "withdrawn",
    ):
        out.add_column(col, overflow="fold")
    with session_scope(_url()) as s:
        for c in privacy.list_consents(s, subject_ref=subject):
            out.add_row(
                str(c.id),
                *(escape(v) for v in (c.subject_ref, c.holder, c.recipient, c.purpose)),  # people's words
                ", ".join(c.kinds) or "all",
                str(c.valid_from),
                str(c.valid_until),
                c.recorded_by,
                c.withdrawn_by or "",
            )
    console.print(out)


@consent_app.command("check")
def consent_check(
    subject: Annotated[str, typer.Option("--subject")],
    holder: Annotated[str, typer.Option("--holder")],
    recipient: Annotated[str, typer.Option("--recipient")],
    purpose: Annotated[str, typer.Option("--purpose")],
    user: User = "",
    kind: Annotated[str | None, typer.Option("--kind")] = None,
) -> None:
    """Exit 0 when a consent allows this use, 1 when not."""
    _actor(user)
    with session_scope(_url()) as s:
        allowed = privacy.consent_allows(
            s, subject_ref=subject, holder=holder, recipient=recipient, purpose=purpose, kind=kind
        )
    if not allowed:
        fail(f"no consent in force lets {recipient} use {subject}'s data held by {holder} for {purpose!r}")
    console.print("allowed", highlight=False)


# -- transfer rules --------------------------------------------------------------------------------
@transfer_app.command("set")
def transfer_set(
    partner: str,
    kind: str,
    fields: Annotated[list[str], typer.Argument(help="Fields that may be sent.")],
    user: User = "",
    legal_basis: Annotated[str, typer.Option("--basis", help="Agreement or article allowing it.")] = "",
    until: Annotated[str | None, typer.Option("--until", help="Last day (YYYY-MM-DD).")] = None,
) -> None:
    """Allow a record kind, with these fields, to go to a partner administration."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            privacy.set_transfer_rule(
                s,
                kind=kind,
                partner=partner,
                fields=fields,
                legal_basis=legal_basis,
                valid_until=_day(until),
                actor=actor,
            )
    except SCITIError as exc:
        fail(exc)
    console.print(f"{kind} may go to {partner} with {len(fields)} fields", highlight=False)


@transfer_app.command("remove")
def transfer_remove(partner: str, kind: str, user: User = "") -> None:
    """Remove a transfer rule: nothing of that kind goes to that partner any more."""
    actor = _actor(user)
    try:
        with session_scope(_url()) as s:
            privacy.remove_transfer_rule(s, kind=kind, partner=partner, actor=actor)
    except SCITIError as exc:
        fail(exc)
    console.print(f"{kind} to {partner}: removed", highlight=False)


@transfer_app.command("list")
def transfer_list(user: User = "", partner: Annotated[str | None, typer.Option("--partner")] = None) -> None:
    """Every transfer rule."""
    _actor(user)
    out = Table(title="Transfer rules")
    for col in ("partner", "kind", "fields", "until", "basis", "set by"):
        out.add_column(col, overflow="fold")
    with session_scope(_url()) as s:
        for r in privacy.list_transfer_rules(s, partner=partner):
            out.add_row(
                r.partner,
                r.kind,
                ", ".join(r.fields),
                str(r.valid_until or ""),
                escape(r.legal_basis),
                r.set_by,
            )
    console.print(out)


@transfer_app.command("check")
def transfer_check(partner: str, kind: str, fields: list[str], user: User = "") -> None:
    """Exit 0 when these fields of this kind may go to the partner, 1 (with why) when not."""
    _actor(user)
    with session_scope(_url()) as s:
        decision = privacy.transfer_allowed(s, kind, partner, fields)
    if not decision:
        fail(decision.reason)
    console.print(f"allowed: {decision.reason}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")
