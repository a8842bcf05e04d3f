"""sciti CLI: lake upkeep (``sciti lake maintain``): compact small files, expire old snapshots,
remove the files nothing uses any more."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column
from rich.table import Table as RichTable

from sciti.cli.common import console, err_console, fail, lake, settings
from sciti.errors import SCITIError
from sciti.lake.catalog import KEEP_ALL_HOURS, KEEP_DAYS, KEEP_LAST
from sciti.lake.reclaim import ORPHAN_DAYS


def maintain(
    table: Annotated[
        list[str] | None,
        typer.Option("--table", "-t", help="Table (zone.name); repeat for several. Default: every table."),
    ] = None,
    keep_days: Annotated[
        float,
        typer.Option("--keep-days", min=0, help="Keep snapshots (time travel) this many days back."),
    ] = KEEP_DAYS,
    keep_last: Annotated[
        int, typer.Option("--keep-last", min=1, help="Always keep at least this many newest snapshots.")
    ] = KEEP_LAST,
    keep_all_hours: Annotated[
        float,
        typer.Option(
            "--keep-all-hours",
            min=0,
            help=(
                "Keep every snapshot of this many recent hours; older ones (up to --keep-days) "
                "keep only the last snapshot of each hour, so time travel there is accurate to the hour."
            ),
        ),
    ] = KEEP_ALL_HOURS,
    target_rows: Annotated[
        int, typer.Option("--target-rows", min=1, help="Rows per data file after compaction.")
    ] = 1_000_000,
    orphan_days: Annotated[
        float,
        typer.Option(
            "--orphan-days",
            min=0,
            help="Remove files no snapshot refers to (a writer stopped half-way) once this many days old.",
        ),
    ] = ORPHAN_DAYS,
) -> None:
    """Compact small files and expire snapshots older than the retention, table by table, then
    remove the files only expired snapshots used and old orphan files.

    Recent history is kept whole; older history keeps one snapshot per hour (the hour's last).
    Snapshots registered models were trained on are always kept, and so are the staged files of
    scoring runs still waiting for the lake.

    Run it periodically (e.g. nightly): every snapshot kept makes the next commit slower, and
    time travel reaches back only as far as the snapshots kept.
    """
    from sciti.risk.engine.scoring_parts import staged_files
    from sciti.risk.models import trained_on_snapshots

    the_lake = lake()
    try:
        idents = table or [info.ident for info in the_lake.list_tables()]
        trained_on = trained_on_snapshots(settings())  # what registered models learnt from stays
        staged = staged_files(settings().resolved_ops_db_url)  # read before any file is listed
    except SCITIError as exc:
        fail(exc)
    out = RichTable(
        Column("table", no_wrap=True),
        "files",
        "snapshots expired",
        "snapshots kept",
        "files removed",
        Column("freed", no_wrap=True),
        caption="files: before → after compaction; removed: files no snapshot uses any more",
    )
    failed = 0
    for ident in idents:
        try:
            result = the_lake.maintain(
                ident,
                keep_days=keep_days,
                keep_last=keep_last,
                keep_all_hours=keep_all_hours,
                target_file_rows=target_rows,
                protected=trained_on.get(ident, ()),
                orphan_days=orphan_days,
                staged=staged,
            )
        except SCITIError as exc:  # one bad table does not stop the others
            err_console.print(f"[red]{ident}:[/] {exc}", highlight=False)
            failed += 1
            continue
        out.add_row(
            ident,
            f"{result.compact.files_before} → {result.compact.files_after}",
            str(result.expired),
            str(result.snapshots_left),
            str((freed := result.removed + result.orphans).files),
            _size(freed.bytes),
        )
    if out.row_count:
        console.print(out)
    if failed:
        fail(f"{failed} of {len(idents)} tables could not be maintained (see above)")


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:,.1f} GB"


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Lake upkeep: compaction, snapshot expiry, removal of unused files.", no_args_is_help=True
    )
    group.command("maintain")(maintain)
    app.add_typer(group, name="lake")
