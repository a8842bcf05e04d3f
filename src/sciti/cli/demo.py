"""sciti demo: the synthetic customs world (generate it, load it through the connectors)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from sciti.cli.common import console, fail, run_or_fail, settings
from sciti.demo import SCALES, generate, load_scale, plan
from sciti.demo.load import FEEDS, Feed, LoadReport, load_world
from sciti.demo.replay import publish_elock

demo_app = typer.Typer(
    help="Synthetic Hong Kong-like customs world for demos, tests and benchmarks.", no_args_is_help=True
)


@demo_app.command("generate")
def generate_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write the world into (must be empty or new)."),
    scale: str = typer.Option("tiny", "--scale", help=f"World size: {' | '.join(SCALES)}."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives the same bytes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a folder that is not empty."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Processes generating the feeds (the output is the same for any number)."
    ),
) -> None:
    """Generate every feed of the world in its real format, with the ground truth apart."""
    sc = run_or_fail(load_scale, scale)
    totals = plan(sc)
    columns = (TextColumn("{task.description:<13}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {feed: bar.add_task(feed, total=total) for feed, total in totals.items()}

        def tick(feed: str, done: int, total: int) -> None:
            bar.update(tasks[feed], completed=done, total=total)

        report = run_or_fail(generate, out, sc, seed, progress=tick, overwrite=overwrite, workers=workers)
    table = Table(title=f"{sc.name} world, seed {seed}, in {out}")
    table.add_column("file or feed")
    table.add_column("records", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"ground truth: {out / 'ground_truth'} (never ingest it)")


@demo_app.command("load")
def load_cmd(
    world: Path = typer.Argument(
        ..., help="Folder written by `sciti demo generate` (ground_truth/ is skipped)."
    ),
    feed: list[str] | None = typer.Option(
        None, "--feed", help="Only this connector (repeatable): " + ", ".join(f.connector for f in FEEDS)
    ),
    no_reference: bool = typer.Option(False, "--no-reference", help="Do not publish reference/ to ref."),
) -> None:
    """Ingest every feed of a generated world through its connector; publish its reference files.

    Each file is one batch (the XML channel in zip bundles); loading the same world again stores
    nothing new. Quarantined records are listed by `sciti quarantine list --user NAME`.
    """
    s = settings()
    columns = (
        TextColumn("{task.description:<26}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[Feed, TaskID] = {}

        def tick(feed: Feed, done: int, total: int) -> None:
            if feed not in tasks:
                tasks[feed] = bar.add_task(feed.connector, total=total or 1)
            bar.update(tasks[feed], completed=done if total else 1)

        report = run_or_fail(
            load_world, s, world, feeds=feed or None, reference=not no_reference, progress=tick
        )
    console.print(_load_table(report))
    for table, rows in report.reference.items():
        console.print(f"published {table}: {rows:,} rows", highlight=False)
    if any(f.quarantined for f in report.feeds):
        console.print(
            "quarantined records: `sciti quarantine list --user engineer` shows them with their reasons"
        )
    if report.failed:
        first = report.failed[0]
        fail(f"{len(report.failed)} batch(es) failed: {first.unit}: {first.error}")


@demo_app.command("publish-elock")
def publish_elock_cmd(
    world: Path = typer.Argument(..., help="Folder written by `sciti demo generate`."),
    host: str = typer.Option("127.0.0.1", "--host", help="MQTT broker address."),
    port: int = typer.Option(1883, "--port", help="MQTT broker port."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Send only the first N messages."),
    rate: float | None = typer.Option(None, "--rate", min=0.1, help="At most this many messages a second."),
) -> None:
    """Play the world's e-lock messages onto MQTT (elock/<lock>/gps|event), as the e-lock platform
    sends them; `sciti serve` stores them through the demo-elock-mqtt connector."""
    columns = (TextColumn("{task.description:<13}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("e-lock", total=None)
        sent = run_or_fail(
            publish_elock,
            world,
            host=host,
            port=port,
            limit=limit,
            rate=rate,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(f"published {sent:,} e-lock messages to {host}:{port}", highlight=False)


def _load_table(report: LoadReport) -> Table:
    received = sum(f.received for f in report.feeds)
    stored = sum(f.stored for f in report.feeds)
    quarantined = sum(f.quarantined for f in report.feeds)
    already = sum(f.already_stored for f in report.feeds)  # sent before with the same values
    caption = f"received {received:,} = stored {stored:,} + quarantined {quarantined:,}"
    table = Table(
        title=f"demo world {report.world}",
        caption=caption + (f" + already stored {already:,}" if already else ""),
    )
    table.add_column("connector", no_wrap=True)
    for col in ("files", "received", "stored", "quarantined"):
        table.add_column(col, justify="right")
    table.add_column("lake rows")
    for f in report.feeds:
        dup = bool(f.results) and all(r.status == "duplicate" for r in f.results)
        style = "red" if f.failed or f.quarantined else ("dim" if dup else "")
        rows = "\n".join(f"{t} {n:,}" for t, n in f.tables.items()) or ("already loaded" if dup else "")
        table.add_row(
            f.feed.connector,
            f"{f.files:,}",
            f"{f.received:,}",
            f"{f.stored:,}",
            f"{f.quarantined:,}",
            rows,
            style=style,
        )
    return table


def register(app: typer.Typer) -> None:
    from sciti.cli import demo_setup

    demo_setup.register(demo_app)
    app.add_typer(demo_app, name="demo")
