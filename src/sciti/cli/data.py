"""sciti CLI: query the lake (``sciti sql``) and list its tables (``sciti tables``).

``sciti sql`` runs as a SCITI user (``--user`` or ``SCITI_USER``): the same policy as the API
(permitted tables, office rows, masked personal fields), and every query is audited; writing to
a file or in csv/json/parquet is an export (needs ``sql.export``, audited as ``export``).
"""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table as RichTable
from rich.text import Text

from sciti.access import DataPolicy, PermissionDenied, Principal, principal_of
from sciti.access.sqlpath import QueryLimits, audited_query
from sciti.cli.common import console, fail, lake, settings, usable_account
from sciti.errors import SCITIError

# The terminal table shows this many rows unless --limit says otherwise; files get everything.
DEFAULT_TABLE_ROWS = 50
_CELL_WIDTH = 40
_MIN_COLUMN_WIDTH = 8


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def sql(
    statement: Annotated[
        str,
        typer.Argument(
            help='One query, e.g. "SELECT office_code, count(*) FROM std.declarations GROUP BY 1".'
        ),
    ],
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="table (terminal), csv, json (one object per line), parquet."),
    ] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (needed for parquet).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Read the lake as of a snapshot id or an ISO timestamp (UTC if no zone)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Return at most N rows.")] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", envvar="SCITI_USER", help="Run as this SCITI user (their roles and office)."
        ),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Why you run it; recorded in the audit trail.")
    ] = None,
    unmask: Annotated[
        bool, typer.Option("--unmask", help="Personal fields in clear (personal.unmask and --purpose).")
    ] = False,
) -> None:
    """Run SQL over the lake as a user. Tables are zone.name: std.declarations, raw.<source>, ref.<list>."""
    if fmt is OutputFormat.parquet and output is None:
        fail("parquet output needs --output FILE")
    who = _principal(user)
    export = output is not None or fmt is not OutputFormat.table
    if export and not who.can("sql.export"):
        denied = f"user {who.username!r} may not export (csv, json, parquet or --output)"
        fail(
            PermissionDenied(denied, remedy="show the result as a table, or ask for a role with 'sql.export'")
        )
    started = time.perf_counter()
    try:
        with audited_query(
            settings().resolved_ops_db_url,
            lake(),
            who,
            statement,
            action="export" if export else "query",
            source="cli",
            as_of=as_of,
            unmask=unmask,
            purpose=purpose,
            extra={"format": fmt.value} if export else None,
            limits=QueryLimits.from_settings(settings(), export=export),
        ) as result:
            if fmt is OutputFormat.table:
                result.rows = _print_table(
                    result.reader, DEFAULT_TABLE_ROWS if limit is None else limit, started
                )
                return
            rows = result.rows = _write(result.reader, fmt, output, limit)
    except SCITIError as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    if output is not None:
        console.print(
            f"{rows} rows written to {output} in {time.perf_counter() - started:.2f}s", highlight=False
        )


def _principal(username: str | None) -> Principal:
    """The user the query runs as: it must exist and be usable now (not disabled, expired or
    locked), as a token or a session of theirs would have to be."""
    if not username:
        fail("sciti sql runs as a SCITI user: pass --user NAME or set SCITI_USER")
    try:
        return principal_of(usable_account(username))
    except SCITIError as exc:
        fail(exc)


def tables(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", envvar="SCITI_USER", help="Only the tables this user may read."),
    ] = None,
) -> None:
    """List the lake's tables with their row counts, files and current snapshot."""
    try:
        infos = lake().list_tables()
    except SCITIError as exc:
        fail(exc)
    if user:
        policy = DataPolicy(_principal(user))
        infos = [i for i in infos if policy.can_read(i.ident)]
    out = RichTable(title="Lake tables")
    for name, justify in (
        ("table", "left"),
        ("rows", "right"),
        ("files", "right"),
        ("snapshot", "right"),
        ("updated (UTC)", "left"),
    ):
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for info in infos:
        out.add_row(
            info.ident,
            f"{info.rows:,}",
            str(info.files),
            str(info.snapshot_id) if info.snapshot_id is not None else "-",
            info.updated_at.strftime("%Y-%m-%d %H:%M:%S") if info.updated_at else "-",
        )
    console.print(out)
    console.print(f"{len(infos)} tables", highlight=False)


def _limited(reader: pa.RecordBatchReader, limit: int | None):
    remaining = limit
    for batch in reader:
        if remaining is None:
            yield batch
            continue
        if remaining <= 0:
            return
        yield batch.slice(0, remaining)
        remaining -= min(remaining, batch.num_rows)


def _write(reader: pa.RecordBatchReader, fmt: OutputFormat, output: Path | None, limit: int | None) -> int:
    """Stream the result to a file or stdout; returns the number of rows written."""
    rows = 0
    target: Any = output.open("wb") if output is not None else sys.stdout.buffer
    try:
        if fmt is OutputFormat.parquet:
            with pq.ParquetWriter(target, reader.schema) as writer:
                for batch in _limited(reader, limit):
                    writer.write_batch(batch)
                    rows += batch.num_rows
        elif fmt is OutputFormat.csv:
            with pacsv.CSVWriter(target, reader.schema) as writer:
                for batch in _limited(reader, limit):
                    writer.write_batch(batch)
                    rows += batch.num_rows
        else:
            for batch in _limited(reader, limit):
                for record in batch.to_pylist():
                    target.write(orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE))
                rows += batch.num_rows
    finally:
        if output is not None:
            target.close()
        else:
            target.flush()
    return rows


def _print_table(reader: pa.RecordBatchReader, show: int, started: float) -> int:
    """A terminal table of the first ``show`` rows; the rest are counted, not printed."""
    shown: list[pa.RecordBatch] = []
    total = 0
    for batch in reader:
        if total < show:
            shown.append(batch.slice(0, show - total))
        total += batch.num_rows
    elapsed = time.perf_counter() - started
    names = reader.schema.names
    fit = max(1, console.width // _MIN_COLUMN_WIDTH)
    out = RichTable(show_lines=False)
    for name in names[:fit]:
        out.add_column(name, overflow="ellipsis", no_wrap=True, max_width=_CELL_WIDTH)
    for batch in shown:
        for record in batch.to_pylist():
            out.add_row(*(_cell(record[n]) for n in names[:fit]))
    console.print(out)
    notes = [f"{total:,} rows", f"{elapsed:.2f}s"]
    if total > show:
        notes.append(f"showing the first {show:,} (use --limit, or --format csv/json/parquet for all)")
    if len(names) > fit:
        notes.append(f"{len(names) - fit} more columns not shown (select fewer columns or use --format csv)")
    console.print(" · ".join(notes), highlight=False)
    return total


def _cell(value: Any) -> Text:
    """Cell text, shortened; never read as Rich markup (values may contain brackets)."""
    if value is None:
        return Text("NULL", style="dim")
    text = str(value)
    return Text(text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…")


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
    app.command("tables")(tables)
