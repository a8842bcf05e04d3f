"""sciti CLI: ``sciti audit list|verify|anchor`` — read and check the audit trail; nothing edits it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sciti.access import anchor, list_entries, verify
from sciti.cli.common import console, fail
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError
from sciti.ops import session_scope

audit_app = typer.Typer(
    help="The audit trail: list entries, verify the hash chain, anchor its head.", no_args_is_help=True
)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T08:00:00Z)")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@audit_app.command("list")
def list_cmd(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this user or service.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action; 'rule.' for all rule.*.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only entries at or after this time (UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only entries before this time (UTC).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000, help="At most N entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Entries, newest first."""
    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            entries = list_entries(
                session, actor=actor, action=action, since=_when(since), until=_when(until), limit=limit
            )
    except SCITIError as exc:
        fail(exc)
    if as_json:
        for e in entries:
            typer.echo(json.dumps({**e.__dict__, "at": e.at.isoformat()}, ensure_ascii=False))
        return
    out = Table(title="Audit trail")
    for name in ("seq", "at (UTC)", "actor", "action", "target", "outcome", "purpose", "source"):
        out.add_column(name, overflow="fold")
    for e in entries:
        out.add_row(
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            # A purpose is a person's words, a target may name a file: text, never Rich markup.
            *(escape(v or "") for v in (e.actor, e.action, e.target, e.outcome, e.purpose, e.source)),
        )
    console.print(out)
    console.print(f"{len(entries)} entries", highlight=False)


@audit_app.command("verify")
def verify_cmd(
    anchor_file: Annotated[
        Path | None, typer.Option("--anchor", help="Also check the heads anchored in this file.")
    ] = None,
) -> None:
    """Recompute the hash chain; exit 1 naming the first entry that was modified, deleted or moved."""
    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            result = verify(session, anchor_file)
    except SCITIError as exc:
        fail(exc)
    if not result.ok:
        fail(f"audit trail broken at entry {result.first_bad_seq}: {result.problem}")
    console.print(
        f"audit trail intact: {result.entries} entries, head {result.head_seq} {result.head_hash}",
        highlight=False,
    )
    if anchor_file is None:
        # Someone with write access to the database can remove the newest entries (or all of them)
        # and the head with them; only heads kept elsewhere show it.
        console.print(
            "checked without an anchor: entries removed from the end, head included, cannot be seen; "
            "check with --anchor FILE (see `sciti audit anchor`)",
            highlight=False,
        )


@audit_app.command("anchor")
def anchor_cmd(
    file: Annotated[
        Path, typer.Argument(help="File to append the head to; keep it off the database server.")
    ],
) -> None:
    """Append the current head (sequence number and hash) to a file, to detect a rewritten chain later."""
    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            seq, digest = anchor(session, file)
    except (SCITIError, OSError) as exc:
        fail(exc)
    console.print(f"anchored entry {seq} {digest} in {file}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
