"""``sciti risk train|evaluate|model|reference``: models, their registry and their evaluation.

Training and promotion are recorded under a named local account (``--user`` or ``SCITI_USER``)
that must exist, be enabled and hold models.train / models.promote.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sciti.cli.common import acting_account, console, fail, run_or_fail
from sciti.cli.common import settings as get_settings

model_app = typer.Typer(help="Model registry: list, show, promote.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate models: on the KCS files or on the lake (time split).")
reference_app = typer.Typer(help="Reference tables behind the derived features.", no_args_is_help=True)

User = Annotated[str, typer.Option("--user", "-u", envvar="SCITI_USER", help="Account the CLI acts as.")]
Json = Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")]


def _actor(user: str, permission: str) -> str:
    return acting_account(user, permission)[0]


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{value!r} is not a date: use YYYY-MM-DD")


def _metrics_table(title: str, result: dict[str, Any], anchors: dict[str, float] | None = None) -> Table:
    table = Table(title=f"{title} (n={result['n']}, positives={result['positives']})")
    for col in ("metric", "value", "95% CI", "anchor"):
        table.add_column(col)
    for name, value in result["metrics"].items():
        lo, hi = result["ci95"].get(name) or (None, None)
        anchor = next(
            (f"{v:.2f} ({k.split('_')[0]})" for k, v in (anchors or {}).items() if k.endswith(name)), ""
        )
        ci = f"{lo:.3f}-{hi:.3f}" if lo is not None and hi is not None else "–"
        table.add_row(name, _figure(value), ci, anchor)
    return table


def _figure(value: float | None) -> str:
    """A metric, or a dash where it cannot be computed (revenue@k% with no revenue known)."""
    return "–" if value is None else f"{value:.3f}"


def train_cmd(
    kind: Annotated[str, typer.Argument(help="Record kind, e.g. declaration.")],
    user: User = "",
    label: Annotated[str, typer.Option(help="fraud or critical (fraud_severity = 2).")] = "fraud",
    since: Annotated[str | None, typer.Option(help="First date of the training window (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="End of the training window, excluded.")] = None,
    promote: Annotated[str | None, typer.Option(help="Promote at once: champion or challenger.")] = None,
    as_json: Json = False,
) -> None:
    """Train a LightGBM model from the lake's inspection outcomes and register it."""
    from sciti.risk.models import train

    actor = _actor(user, "models.train")
    if promote:
        _actor(user, "models.promote")  # checked before the minutes of training, not after
    with console.status(f"training a {label} model for {kind} ..."):
        entry = run_or_fail(
            train,
            get_settings(),
            kind,
            since=_day(since),
            until=_day(until),
            label=label,
            actor=actor,
            promote_to=promote,
        )
    if as_json:
        print(json.dumps(entry, default=str, indent=2))
        return
    console.print(
        f"registered [bold]{entry['version']}[/] ({entry['status']}), {entry['rows']} labelled rows"
    )
    m = entry["metrics"]
    for line in sources_lines(m.get("sources") or {}):
        console.print(line, highlight=False)
    if "validation" in m:
        console.print(_metrics_table(f"validation from {m['split_date']}", m["validation"]))
    if "validation_random" in m:
        console.print(_metrics_table("random-inspection subset (unbiased)", m["validation_random"]))


def sources_lines(sources: dict[str, dict[str, float]]) -> list[str]:
    """What the model learnt from, per source system, and a warning when their label rates differ."""
    if not sources:
        return []
    lines = [
        "learnt from: "
        + ", ".join(f"{src} {s['rows']:,} ({s['label_rate']:.0%} positive)" for src, s in sources.items())
    ]
    from sciti.risk.models import sources_differ

    if sources_differ(sources):
        lines.append(
            "[yellow]note:[/] these source systems differ in their label rates; a model trained on them "
            "together may learn which system a record came from, not fraud (check the top factors): "
            "train on one administration's records with --since/--until (docs/risk-models.md)"
        )
    return lines


def list_cmd(kind: Annotated[str | None, typer.Argument()] = None, as_json: Json = False) -> None:
    """Model versions, newest first."""
    from sciti.risk.models import list_versions

    rows = run_or_fail(list_versions, get_settings(), kind)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table("version", "kind", "label", "status", "rows", "AP (valid)", "created by", "created at")
    for r in rows:
        ap = r["metrics"].get("validation", {}).get("metrics", {}).get("average_precision")
        table.add_row(
            r["version"],
            r["kind"],
            r["label"],
            r["status"],
            str(r["rows"]),
            "" if ap is None else f"{ap:.3f}",
            r["created_by"],
            r["created_at"] or "",
        )
    console.print(table)


def show_cmd(version: str, as_json: Json = True) -> None:
    """One version with its metrics and status history (JSON)."""
    from sciti.risk.models import get_version

    print(json.dumps(run_or_fail(get_version, get_settings(), version), default=str, indent=2))


def promote_cmd(
    version: str,
    role: Annotated[str, typer.Option(help="champion, challenger or retired.")] = "champion",
    user: User = "",
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why: kept in the model's history.")] = "",
) -> None:
    """Make a version the champion (or challenger) of its kind; the previous one is retired."""
    from sciti.risk.models import promote

    actor = _actor(user, "models.promote")
    entry = run_or_fail(promote, get_settings(), version, role, actor=actor, reason=reason)
    console.print(f"{entry['version']} is now {entry['status']} for {entry['kind']}")


def evaluate_kcs_cmd(
    train: Annotated[Path, typer.Option("--train", exists=True, dir_okay=False, help="KCS train.csv")],
    test: Annotated[Path, typer.Option("--test", exists=True, dir_okay=False, help="KCS valid.csv")],
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 200,
    as_json: Json = False,
) -> None:
    """Train on the KCS train file, report precision/recall@k%, AP and ROC AUC on the test file."""
    from sciti.risk.evaluate import evaluate_kcs
    from sciti.risk.features import known_codes

    s = get_settings()
    with console.status("evaluating on KCS (features out-of-fold, two models) ..."):
        report = run_or_fail(evaluate_kcs, train, test, known=known_codes(s), bootstrap=bootstrap)
    if as_json:
        print(json.dumps(report, default=str, indent=2))
        return
    for task, result in report["tasks"].items():
        console.print(_metrics_table(f"KCS {task}", result, result["anchors"]))
        for row in result["top_explained"][:3]:
            console.print(f"  {row['declaration_id']} score {row['score']:.2f}: " + "; ".join(row["factors"]))
    console.print(f"{report['seconds']} s")


def evaluate_lake_cmd(
    kind: Annotated[str, typer.Argument(help="Record kind, e.g. declaration.")] = "declaration",
    label: Annotated[str, typer.Option(help="fraud or critical.")] = "fraud",
    since: Annotated[str | None, typer.Option(help="First date (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="End date, excluded.")] = None,
    as_json: Json = False,
) -> None:
    """Train on the earlier period of the lake and report on the latest (time split), with revenue@k%."""
    from sciti.risk.evaluate import evaluate_lake

    report = run_or_fail(
        evaluate_lake, get_settings(), kind, label=label, since=_day(since), until=_day(until)
    )
    if as_json:
        print(json.dumps(report, default=str, indent=2))
        return
    console.print(_metrics_table(f"{kind} {label}, tested from {report['split_date']}", report["validation"]))
    if "revenue_note" in report:
        console.print(report["revenue_note"], highlight=False)
    if "validation_random" in report:
        console.print(_metrics_table("random-inspection subset (unbiased)", report["validation_random"]))


def reference_build_cmd() -> None:
    """Recompute the reference tables (price bands, histories, AEO, watch list) from the lake."""
    from sciti.risk.features import build_reference, save_reference

    s = get_settings()
    ref = run_or_fail(build_reference, s)
    run_or_fail(save_reference, s, ref)
    console.print(
        f"reference {ref.snapshot_id} as of {ref.as_of}: {ref.bands.num_rows} price bands, "
        f"{ref.history.num_rows} history keys, {ref.parties.num_rows} parties, "
        f"{ref.watchlist.num_rows} watch-list entries"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    model_app.command("list")(list_cmd)
    model_app.command("show")(show_cmd)
    model_app.command("promote")(promote_cmd)
    app.add_typer(model_app, name="model")
    evaluate_app.callback(invoke_without_command=True)(_evaluate_default)
    evaluate_app.command("kcs")(evaluate_kcs_cmd)
    evaluate_app.command("lake")(evaluate_lake_cmd)
    app.add_typer(evaluate_app, name="evaluate")
    reference_app.command("build")(reference_build_cmd)
    app.add_typer(reference_app, name="reference")


def _evaluate_default(ctx: typer.Context) -> None:
    """`sciti risk evaluate` alone evaluates a declaration fraud model on the lake."""
    if ctx.invoked_subcommand is None:
        evaluate_lake_cmd()
