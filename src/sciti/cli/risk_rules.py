"""``sciti risk rule ...``: write, check, version, approve (four eyes) and dry-run risk rules.

The CLI talks to the operational database directly, so it runs where an operator runs the
server. It acts as a named local account: ``--user NAME`` (or ``SCITI_USER``), which must exist,
be enabled and hold the permission of the step (rules.write, rules.approve). Four eyes holds on
the CLI as on the API: the author of a version cannot approve it under any name of theirs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from sciti.cli.common import console, fail
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
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


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
    """Store rules as drafts (a new rule, or a new version of an existing one)."""
    from sciti.risk import rules

    with _ops() as session:
        for path in files:
            try:
                row = rules.save_rule(session, _read(path), actor=user, comment=comment)
                if submit:
                    rules.submit(session, row.rule_id, row.version, actor=user, comment=comment)
            except SCITIError as exc:
                fail(f"{path}: {exc}")
            console.print(f"{row.rule_id} version {row.version}: {row.status}")


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
                rule.title,
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
            table.add_row(str(d.version), d.decision, d.actor, f"{d.at:%Y-%m-%d %H:%M}", d.comment)
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
            with session_scope(get_settings().resolved_ops_db_url) as session:
                rules.audit_refusal(session, actor=user, rule_id=rule_id, version=version, decision=step)
        fail(exc)
    except SCITIError as exc:
        fail(exc)
    console.print(f"{rule_id} version {version}: {status}")


@rule_app.command("submit")
def submit(rule_id: str, version: int, user: User, comment: Comment = "") -> None:
    """Submit a draft for approval."""
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
    target: Annotated[str, typer.Argument(help="A rule id, or a rule file not stored yet.")],
    days: Annotated[int, typer.Option(min=1, help="Days back from the newest record (or --until).")] = 30,
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day of the window, YYYY-MM-DD.")] = None,
    user: Annotated[str, typer.Option("--user", "-u", envvar="SCITI_USER", help="Who ran it (kept).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """What the rule would have hit over the last N days of lake data, and known frauds among the hits."""
    from sciti.risk import rules

    settings = get_settings()
    try:
        end = date.fromisoformat(until) if until else None
    except ValueError:
        fail(f"--until {until!r} is not a date: write YYYY-MM-DD")
    try:
        path = Path(target)
        if path.suffix in (".yaml", ".yml") and path.exists():
            result = rules.dry_run(settings, rules.parse_rule(_read(path)), days, until=end)
        else:
            if not user:
                fail("a stored rule's dry-run is kept with who ran it: give --user NAME (or SCITI_USER)")
            with _ops() as session:
                result = rules.dry_run_version(
                    settings, session, target, version, days, actor=user, until=end
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
    console.print(
        f"{result.records:,} {result.kind}s in the window; hits {result.hits:,} rows, "
        f"{result.hit_subjects:,} {result.kind}s; inspected {result.inspected_hits:,}; "
        f"known frauds {result.known_frauds:,} (hit rate {rate})"
    )
    if result.hits_per_day:
        table = Table("day", "hits", "known frauds")
        for day in result.hits_per_day[-31:]:
            table.add_row(day["day"], str(day["hit_subjects"]), str(day["known_frauds"]))
        console.print(table)
    if result.sample_ids:
        console.print("sample record ids: " + ", ".join(result.sample_ids[:10]))


def register(risk_app: typer.Typer) -> None:
    risk_app.add_typer(rule_app, name="rule")
