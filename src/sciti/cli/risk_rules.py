"""``sciti risk rule ...``: write, check, version, approve (four eyes) and dry-run risk rules.

The CLI talks to the operational database directly, so it runs where an operator runs the
server. It acts as a named local account: ``--user NAME`` (or ``SCITI_USER``), which must exist,
be enabled and hold the permission of the step (rules.write, rules.approve). Four eyes holds on
the CLI as on the API: the author of a version cannot approve it under any name of theirs, only
the author submits a draft, and refusals are audited as ``denied`` (source ``cli``). A dry-run,
of a file or of a stored version, is a read of the lake on that account's behalf: its office, its
permissions (``--unmask --purpose`` for personal fields), audited (decision 0080).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from sciti.cli.common import acting_account, console, fail, usable_account
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError

rule_app = typer.Typer(
    help="Risk rules: add, check, list, show, diff, submit, approve, reject, retire, dry-run.",
    no_args_is_help=True,
)

User = Annotated[
    str,
    typer.Option(
        "--user",
        "-u",
        envvar="SCITI_USER",
        help="Account the CLI acts as (must exist and hold the step's permission).",
    ),
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why: kept in the rule's history.")]


@contextmanager
def _ops() -> Iterator[Session]:
    from sciti.ops import session_scope

    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            yield session
    except SCITIError as exc:
        fail(exc)
    except (OperationalError, ProgrammingError):
        fail(
            "the operational database is not initialised or not reachable: run `sciti init`, check ops_db_url"
        )


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not the rule's
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end]
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        fail(
            f"{path}: not UTF-8 text: byte 0x{bad[:1].hex()} at line {line} column {column} (byte "
            f"{exc.start} of the file): save the rule as UTF-8"
        )


def _audit_denied(user: str, rule_id: str, version: int | None, decision: str, reason: str) -> None:
    """A refused step, audited as over the API, in its own transaction (the refused one rolled back)."""
    from sciti.ops import session_scope
    from sciti.risk import rules

    with session_scope(get_settings().resolved_ops_db_url) as session:
        rules.audit_refusal(
            session,
            actor=user,
            rule_id=rule_id,
            version=version,
            decision=decision,
            reason=reason,
            source="cli",
        )


def _save(path: Path, user: str, comment: str, submit: bool) -> tuple[str, int, str]:
    """Store one file (and submit it) in its own transaction: what is printed as stored is stored."""
    from sciti.ops import session_scope
    from sciti.risk import rules

    text = _read(path)
    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            known = {r.id for r in rules.list_rules(session)}
            row = rules.save_rule(session, text, actor=user, comment=comment)
            if submit:
                rules.submit(session, row.rule_id, row.version, actor=user, comment=comment)
            return row.rule_id, row.version, row.status
    except rules.ProtectedFieldsRefused as exc:
        rule_id = rules.parse_rule(text).id
        _audit_denied(user, rule_id, None, "version" if rule_id in known else "create", "protected fields")
        fail(f"{path}: {exc}")
    except SCITIError as exc:
        fail(f"{path}: {exc}")
    except (OperationalError, ProgrammingError):
        fail(
            "the operational database is not initialised or not reachable: run `sciti init`, check ops_db_url"
        )


@rule_app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="Rule files (YAML).")]) -> None:
    """Check rule files without storing them: syntax, names, types; prints the compiled SQL."""
    from sciti.risk.rules import compile_rule, parse_rule

    for path in files:
        try:
            compiled = compile_rule(parse_rule(_read(path)))
        except SCITIError as exc:
            fail(f"{path}: {exc}")
        console.print(f"[green]ok[/] {path}: {compiled.rule_id} ({compiled.kind})")
        console.print(f"  SQL: {compiled.sql}", highlight=False, soft_wrap=True)


@rule_app.command("add")
def add(
    files: Annotated[list[Path], typer.Argument(help="Rule files (YAML); a known id gets a new version.")],
    user: User,
    comment: Comment = "",
    submit: Annotated[bool, typer.Option(help="Submit each new version for approval at once.")] = False,
) -> None:
    """Store rules as drafts (a new rule, or a new version of an existing one), one file at a time:
    the first file refused stops the command, the ones before it are stored."""
    for path in files:
        rule_id, version, status = _save(path, user, comment, submit)
        console.print(f"{rule_id} version {version}: {status}")


@rule_app.command("starter")
def starter(user: User) -> None:
    """Load the starter rules shipped with SCITI as drafts (review, dry-run, submit, approve)."""
    from sciti.risk import rules

    with _ops() as session:
        for name, text in rules.starter_rule_texts().items():
            try:
                row = rules.save_rule(session, text, actor=user, comment=f"starter rule {name}")
            except rules.RuleWorkflowError:
                console.print(f"{name}: unchanged")
                continue
            console.print(f"{row.rule_id} version {row.version}: {row.status}")


@rule_app.command("list")
def list_(kind: Annotated[str | None, typer.Option(help="Only this record kind.")] = None) -> None:
    """Rules with their latest and effective versions."""
    from sciti.risk import rules

    table = Table("id", "kind", "title", "latest", "status", "in effect")
    with _ops() as session:
        for rule in rules.list_rules(session, kind):
            latest = rules.get_version(session, rule.id)
            table.add_row(
                rule.id,
                rule.kind,
                escape(rule.title),  # an analyst's words: brackets in them are text
                str(rule.latest_version),
                latest.status,
                f"v{rule.effective_version}" if rule.effective_version else "-",
            )
    console.print(table)


@rule_app.command("show")
def show(
    rule_id: str, version: Annotated[int | None, typer.Option(help="Version (default: the latest).")] = None
) -> None:
    """One version: status, definition and the SQL it compiles to."""
    from sciti.risk import rules

    with _ops() as session:
        row = rules.get_version(session, rule_id, version)
        compiled = rules.compile_rule(rules.parse_rule(row.text), row.version)
        console.print(
            f"[bold]{row.rule_id}[/] version {row.version} — {row.status} "
            f"(by {row.author}{', decided by ' + row.decided_by if row.decided_by else ''})"
        )
        console.print(Syntax(row.text, "yaml"))
        console.print(f"SQL: {compiled.sql}", highlight=False, soft_wrap=True)


@rule_app.command("history")
def history(rule_id: str) -> None:
    """Every decision on every version, oldest first."""
    from sciti.risk import rules

    table = Table("version", "decision", "by", "at", "comment")
    with _ops() as session:
        for d in rules.history(session, rule_id).decisions:
            table.add_row(
                str(d.version), d.decision, d.actor, f"{d.at:%Y-%m-%d %H:%M}", escape(d.comment or "")
            )
    console.print(table)


@rule_app.command("diff")
def diff(
    rule_id: str,
    old: Annotated[
        int | None, typer.Option("--from", help="Older version (default: the one before --to).")
    ] = None,
    new: Annotated[int | None, typer.Option("--to", help="Newer version (default: the latest).")] = None,
) -> None:
    """Differences between two versions (unified diff of the canonical YAML)."""
    from sciti.risk import rules

    with _ops() as session:
        new = new or rules.get_rule(session, rule_id).latest_version
        text = rules.diff(session, rule_id, old or max(1, new - 1), new)
    console.print(Syntax(text, "diff") if text else "(no differences)")


def _decide(step: str, rule_id: str, version: int, user: str, comment: str) -> None:
    from sciti.ops import session_scope
    from sciti.risk import rules

    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            row = getattr(rules, step)(session, rule_id, version, actor=user, comment=comment)
            status = row.status
    except rules.FourEyesViolation as exc:
        if step in ("approve", "reject"):
            _audit_denied(user, rule_id, version, step, "four eyes")
        fail(exc)
    except rules.NotTheAuthor as exc:
        _audit_denied(user, rule_id, version, step, "not the author")
        fail(exc)
    except rules.ProtectedFieldsRefused as exc:
        _audit_denied(user, rule_id, version, step, "protected fields")
        fail(exc)
    except SCITIError as exc:
        fail(exc)
    console.print(f"{rule_id} version {version}: {status}")


@rule_app.command("submit")
def submit(rule_id: str, version: int, user: User, comment: Comment = "") -> None:
    """Submit a draft for approval (only its author does)."""
    _decide("submit", rule_id, version, user, comment)


@rule_app.command("approve")
def approve(rule_id: str, version: int, user: User, comment: Comment = "") -> None:
    """Approve a submitted version (needs rules.approve; never its author)."""
    _decide("approve", rule_id, version, user, comment)


@rule_app.command("reject")
def reject(rule_id: str, version: int, user: User, comment: Comment = "") -> None:
    """Reject a submitted version (needs rules.approve; never its author)."""
    _decide("reject", rule_id, version, user, comment)


@rule_app.command("retire")
def retire(rule_id: str, user: User, comment: Comment = "") -> None:
    """Draft a version that switches the rule off; it takes effect once approved."""
    from sciti.risk import rules

    with _ops() as session:
        row = rules.retire(session, rule_id, actor=user, comment=comment)
        console.print(f"{rule_id} version {row.version}: {row.status} (retires the rule once approved)")


@rule_app.command("dry-run")
def dry_run(
    target: Annotated[str, typer.Argument(help="A rule id, or a rule file (.yaml) not stored yet.")],
    days: Annotated[
        int, typer.Option(min=1, help="Days back from the newest record (or --until); at most ten years.")
    ] = 30,
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the window, YYYY-MM-DD.")] = None,
    user: Annotated[
        str,
        typer.Option(
            "--user",
            "-u",
            envvar="SCITI_USER",
            help="Account the dry-run reads the lake as (its office and permissions; audited).",
        ),
    ] = "",
    unmask: Annotated[
        bool,
        typer.Option(
            "--unmask",
            help="The rule names personal fields: read them in clear (personal.unmask, --purpose).",
        ),
    ] = False,
    purpose: Annotated[str | None, typer.Option(help="Why you unmask; recorded in the audit trail.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """What the rule would have hit over the last N days of lake data, and known frauds among the hits.

    Runs as --user: over that account's office only, personal fields only with --unmask and a
    --purpose, and written to the audit trail (rule.dry_run). A stored version's figures are kept
    for the approver.
    """
    from sciti.access import principal_of
    from sciti.risk import rules

    settings = get_settings()
    if days > rules.MAX_DAYS:
        fail(f"--days {days} is more than {rules.MAX_DAYS} (ten years): give a shorter window")
    try:
        end = date.fromisoformat(until) if until else None
    except ValueError:
        fail(f"--until {until!r} is not a date: write YYYY-MM-DD")
    path = Path(target)
    is_file = path.suffix in (".yaml", ".yml") and path.exists()
    definition = None
    if is_file:  # a bad file fails before any account is looked at
        try:
            definition = rules.parse_rule(_read(path))
        except SCITIError as exc:
            fail(f"{path}: {exc}")
    name, _ = acting_account(user, "rules.write")
    principal = principal_of(usable_account(name))
    try:
        if definition is not None:
            result = rules.dry_run_as(
                settings, principal, definition, days, until=end, unmask=unmask, purpose=purpose, source="cli"
            )
        else:
            with _ops() as session:
                result = rules.dry_run_version(
                    settings,
                    session,
                    target,
                    version,
                    days,
                    principal=principal,
                    until=end,
                    unmask=unmask,
                    purpose=purpose,
                    source="cli",
                )
    except SCITIError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return
    console.print(
        f"[bold]{result.rule_id}[/]{f' v{result.version}' if result.version else ''} over "
        f"{result.window_from} .. {result.window_to} ({result.days} days, {result.seconds:.2f} s)"
    )
    rate = f"{result.hit_rate:.0%}" if result.hit_rate is not None else "n/a"
    scope = f" ({result.in_scope:,} in the rule's scope)" if result.scope_kept else ""
    office = f" of office {result.office}" if result.office else ""
    console.print(
        f"{result.records:,} {result.kind}s{office} in the window{scope}; hits {result.hits:,} {result.kind}s"
        f"{f' ({result.hit_rows:,} goods items)' if result.kind == 'declaration' else ''}; "
        f"inspected {result.inspected_hits:,}; "
        f"known frauds {result.known_frauds:,} (hit rate {rate})",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if result.hits_per_day:
        table = Table("day", "hits", "known frauds")
        for day in result.hits_per_day[-31:]:
            table.add_row(day["day"], str(day["hits"]), str(day["known_frauds"]))
        console.print(table)
    if result.sample_ids:
        console.print("sample record ids: " + ", ".join(result.sample_ids[:10]))


def register(risk_app: typer.Typer) -> None:
    risk_app.add_typer(rule_app, name="rule")
