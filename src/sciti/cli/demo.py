"""sciti demo: the synthetic customs world (generate it; the lead wires ingestion)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sciti.cli.common import console, run_or_fail
from sciti.demo import SCALES, generate, load_scale, plan

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
        1, "--workers", min=1, help="Processes for declaration and road chunks (same output)."
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


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
