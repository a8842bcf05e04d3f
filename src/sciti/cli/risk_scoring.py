"""``sciti risk score|report|flush|status``: batch scoring, hit-rate report, the assessment buffer."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated

import typer
from rich.table import Table

from sciti.cli.common import acting_account, console, fail, usable_account
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError

KINDS = ("declaration", "consignment", "road_cargo_info", "passenger", "currency_declaration")


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        fail(f"{option} {value!r} is not a date: write it as YYYY-MM-DD")


def _office_of(user: str) -> str | None:
    """The office of the account the report is made as; it must be usable and hold risk.report."""
    from sciti.access import principal_of

    name, _ = acting_account(user, "risk.report")
    return principal_of(usable_account(name)).office_code


def score(
    since: Annotated[
        str | None, typer.Option("--since", help="First record date to score (YYYY-MM-DD).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Score records dated before this day.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Record kind; repeat for several. Default: all.")
    ] = None,
    explain: Annotated[
        str, typer.Option("--explain", help="Model explanations for: flagged (default) or all records.")
    ] = "flagged",
    unassessed_only: Annotated[
        bool,
        typer.Option(
            "--unassessed-only",
            help="Score only records without an assessment yet (to finish a run that stopped part way).",
        ),
    ] = False,
    rules_only: Annotated[
        bool,
        typer.Option(
            "--rules-only",
            help="Score with the approved rules only, no model (e.g. while a champion cannot be "
            "loaded). Without it, a champion that cannot be loaded stops the run before anything is written.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Score every record ingested in the window: write risk.assessments, queue the flagged ones."""
    from sciti.risk.engine import Assessor, score_since

    if explain not in ("flagged", "all"):
        fail(f"--explain {explain!r}: use flagged or all")
    kinds = kind or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        fail(f"unknown record kind {unknown[0]!r}: use one of {', '.join(KINDS)}")
    s = get_settings()
    start, end = _date(since, "--since"), _date(until, "--until")
    results = []
    try:
        assessor = Assessor.load(s, kinds=tuple(kinds), rules_only=rules_only)
        # Before anything is written: a kind whose champion cannot be loaded would be scored
        # with rules only, unlike real time (decision 0093).
        assessor.require_models()
        with console.status("scoring ...", spinner="dots"):
            for k in kinds:
                results.append(
                    score_since(
                        s,
                        k,
                        since=start,
                        until=end,
                        assessor=assessor,
                        explain=explain,
                        unassessed_only=unassessed_only,
                    )
                )
    except SCITIError as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps([r.__dict__ for r in results], default=str))
        return
    table = Table(title="Batch scoring")
    for col in ("kind", "rows read (decl.: goods items)", "assessed (decl.: declarations)", "red", "yellow",
                "blue", "green", "sampled", "queued", "over capacity", "model"):  # fmt: skip
        table.add_column(col, justify="right" if col not in ("kind", "model") else "left")
    for r in results:
        table.add_row(
            r.kind,
            str(r.records),
            str(r.assessments),
            *(str(r.lanes.get(lane, 0)) for lane in ("red", "yellow", "blue", "green")),
            str(r.sampled),
            str(r.queued),
            str(r.over_capacity),
            r.model_version or "none (rules only)",
        )
    console.print(table)
    for r in results:
        if r.skipped:
            console.print(f"{r.kind}: {r.skipped:,} record(s) already had an assessment and were left alone")


def report(
    since: Annotated[
        str | None, typer.Option("--since", help="From this day (default: 90 days ago).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Until this day (exclusive; default: today).")
    ] = None,
    period: Annotated[str, typer.Option("--period", help="day, week or month.")] = "month",
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only this record kind.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            "-u",
            envvar="SCITI_USER",
            help="Report as this account (risk.report): of its office only when it is bound to one.",
        ),
    ] = None,
) -> None:
    """Hit rates per rule and per model over time; flags rules that never hit or only hit the innocent.

    Without --user it covers every office (the instance's operator); with it, what that account
    would get from GET /api/v1/risk/report (decision 0090).
    """
    from sciti.risk.engine import hit_report

    office = _office_of(user) if user else None
    try:
        data = hit_report(
            get_settings(),
            since=_date(since, "--since"),
            until=_date(until, "--until"),
            period=period,
            kind=kind,
            office=office,
        )
    except SCITIError as exc:
        fail(exc)
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    scope = f", office {office}" if office else ""
    rules = Table(title=f"Rules {data['since']} .. {data['until']}{scope}")
    for col in ("rule", "hits", "inspected", "frauds", "hit rate", "flag"):
        rules.add_column(col)
    for r in data["rules"]:
        rate = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.0%}"
        rules.add_row(
            r["rule_id"], str(r["hits"]), str(r["inspected"]), str(r["frauds"]), rate, r["flag"] or ""
        )
    console.print(rules)
    models = Table(title="Models over time")
    for col in ("model", "period", "assessed", "flagged", "inspected", "frauds", "hit rate"):
        models.add_column(col)
    for m in data["models_over_time"]:
        rate = "-" if m["hit_rate"] is None else f"{m['hit_rate']:.0%}"
        models.add_row(
            m["model_version"], m["period"], str(m["assessed"]), str(m["flagged"]), str(m["inspected"]),
            str(m["frauds"]), rate,
        )  # fmt: skip
    console.print(models)
    cs = data["compliance_sample"]
    rate = "-" if cs["hit_rate"] is None else f"{cs['hit_rate']:.0%}"
    console.print(
        f"Random compliance sample: {cs['inspected']} inspected, {cs['frauds']} frauds, hit rate {rate}"
    )
    src = data["inspections"]
    console.print(
        f"Inspection results: {src['posted']} posted to SCITI, {src['acquired']} acquired with the data"
    )


def flush() -> None:
    """Move buffered real-time assessments into the lake now (the server does this continuously),
    and finish scoring parts whose lake commit was interrupted."""
    from sciti.risk.engine import Flusher, scoring_parts

    try:
        s = get_settings()
        f = Flusher(s)
        moved = f.flush()
        waiting = scoring_parts.pending(s.resolved_ops_db_url)
        parts = f" (and {waiting:,} queued by a scoring run, committed once 2 minutes old)" if waiting else ""
        console.print(f"flushed {moved} assessment(s) to risk.assessments; {f.pending()} pending{parts}")
    except SCITIError as exc:
        fail(exc)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
    app.command("report")(report)
    app.command("flush")(flush)
