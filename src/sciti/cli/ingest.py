"""sciti CLI: ``ingest``, ``batches`` and ``quarantine list|show|resubmit|discard`` (one entry, or
a selection: decisions 0110 and 0117).

The quarantine commands act as a named account (``--user`` or ``SCITI_USER``, decisions 0024 and
0099) holding ``quarantine.read`` (list, show) or ``quarantine.resubmit`` (resubmit, discard): that
account, not the OS user, is recorded as ``resolved_by`` and in the audit trail.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from sciti.acquire import (
    BatchResult,
    Runner,
    discard,
    list_batches,
    list_connectors,
    list_quarantine,
    load_connector,
    resubmit,
    show_quarantine,
)
from sciti.acquire.errors import UnitBusy
from sciti.acquire.quarantine import ensure_ready
from sciti.acquire.quarantine_bulk import BULK_MAX, Selection, discard_selection
from sciti.acquire.quarantine_resubmit import RUN_MAX, resubmit_selection
from sciti.acquire.units import files_in
from sciti.cli.common import acting_account, console, fail, settings
from sciti.errors import SCITIError
from sciti.settings import Settings

# Exit status of a run that left units to another process ingesting them at that moment: "try
# again later" (EX_TEMPFAIL of sysexits.h), not a failure of the data.
TRY_LATER = 75

quarantine_app = typer.Typer(
    help="Look at, correct and re-submit, or discard quarantined units (as --user / SCITI_USER).",
    no_args_is_help=True,
)
User = Annotated[
    str, typer.Option("--user", "-u", envvar="SCITI_USER", help="Account the CLI acts as (audited).")
]
# The selection of open entries a bulk discard or re-submission takes (Selection, decision 0110).
OnlyConnector = Annotated[str | None, typer.Option("--connector", "-c", help="Only this connector.")]
OnlySource = Annotated[str | None, typer.Option("--source", help="Only this data source.")]
OnlyBatch = Annotated[str | None, typer.Option("--batch", "-b", help="Only this batch.")]
ReasonContains = Annotated[
    str | None, typer.Option("--reason-contains", help="Only entries whose reason holds these words.")
]
After = Annotated[datetime | None, typer.Option("--after", help="Quarantined at or after (UTC).")]
Before = Annotated[datetime | None, typer.Option("--before", help="Quarantined before (UTC).")]
Everything = Annotated[bool, typer.Option("--all", help="Every open entry (no selection).")]


def _selection(
    ids: list[int] | None,
    connector: str | None,
    source: str | None,
    batch: str | None,
    reason_contains: str | None,
    after: datetime | None,
    before: datetime | None,
    everything: bool,
) -> Selection:
    """The bulk commands' options as the Selection the core functions take (decision 0110)."""
    return Selection(
        connector=connector,
        source=source,
        batch_id=batch,
        reason_contains=reason_contains,
        received_after=after,
        received_before=before,
        ids=tuple(ids or ()),
        everything=everything,
    )


def _acting(user: str, permission: str) -> str:
    """The account a quarantine command acts as. The instance is checked first: a registry command
    on a home never initialised says so, and makes nothing (decision 0094)."""
    try:
        ensure_ready(settings())
    except SCITIError as exc:
        fail(exc)
    return acting_account(user, permission)[0]


def _print_json(data: object) -> None:
    console.print_json(orjson.dumps(data, default=str).decode())


MAX_ROWS = 20  # past this many batches, list only those that need a look (quarantine, failures)
# A batch's counts: received = stored + quarantined + already stored (rows or units whose records
# were all stored before with the same values, e.g. a file sent again: decision 0105).


def _result_table(results: list[BatchResult]) -> RichTable:
    shown = results
    if len(results) > MAX_ROWS:
        shown = [r for r in results if r.status == "failed" or r.quarantined][:MAX_ROWS]
    # As `sciti batches`: the counts as the sum they make, so 80 columns show every figure whole.
    table = RichTable(
        title="batches", box=box.SIMPLE_HEAD, pad_edge=False, caption=_totals(results, len(shown))
    )
    table.add_column("unit", overflow="fold", ratio=1, min_width=9)
    table.add_column("status", min_width=9)
    table.add_column("received = stored + quarantined + already stored", justify="right", overflow="fold")
    table.add_column("batch", min_width=12)
    for r in shown:
        style = {"failed": "red", "duplicate": "dim", "busy": "yellow"}.get(r.status, "")
        counts = f"{r.received:,} = {r.stored:,} + {r.quarantined:,} + {r.already_stored:,}"
        if r.replaced:
            counts += f" ({r.replaced:,} replaced)"
        table.add_row(escape(r.unit), r.status, counts, r.batch_id[:12], style=style)
    return table


def _totals(results: list[BatchResult], shown: int) -> str:
    statuses = {
        st: sum(r.status == st for r in results) for st in ("committed", "duplicate", "failed", "busy")
    }
    received = sum(r.received for r in results)
    stored = sum(r.stored for r in results)
    quarantined = sum(r.quarantined for r in results)
    already = sum(r.already_stored for r in results)
    text = ", ".join(f"{n} {st}" for st, n in statuses.items() if n)
    text += (
        f" · received {received:,} = stored {stored:,} + quarantined {quarantined:,}"
        f" + already stored {already:,}"
    )
    if already:
        text += " (already stored: sent before with the same values; nothing to do)"
    if replaced := sum(r.replaced for r in results):
        text += f" · {replaced:,} of the stored replaced a record stored before with other values"
    if shown < len(results):
        text += f" · {len(results) - shown} more not listed (`sciti batches` shows all)"
    return text


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone since it was listed: said when its turn comes
        return 0


def ingest(
    connector: Annotated[str, typer.Argument(help="Connector name (a folder under connectors/).")],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders; each file is one batch.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Run a connector once over files or folders. Quarantined rows are not a failure; a failed batch is."""
    s = settings()
    try:
        conn = load_connector(s, connector)
        runner = Runner(s)
        recovered = runner.recover()  # batches a killed run left half-way are finished first
        if not paths:
            fail(f"give the files or folders to ingest with connector {connector}")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:  # checked before anything is read: a typo should not leave half a run behind
            fail(f"no such file or folder: {', '.join(missing)} (nothing was ingested)")
        # A file found in a folder is named by its path under that folder, as the runner names it
        # (``old/api_records.jsonl`` and ``api_records.jsonl`` stay two names in every locator).
        todo = [
            (p, unit, _size(p))
            for path in paths
            for p, unit in (
                [(f, f.relative_to(path).as_posix()) for f in files_in(path, conn.files)]
                if path.is_dir()
                else [(path, path.name)]
            )
        ]
        results: list[BatchResult] = []
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=as_json,
            transient=True,
        ) as progress:
            task = progress.add_task(f"ingest {connector}", total=sum(size for *_, size in todo) or None)
            for path, unit, _ in todo:
                try:
                    results += runner.ingest_path(
                        conn, path, progress=lambda _r, n: progress.advance(task, n), unit=unit
                    )
                except FileNotFoundError:  # moved or deleted after it was listed: the rest go on
                    gone = escape(str(path))
                    console.print(f"[yellow]skipped[/] {gone}: it is gone (moved or deleted while listed)")
    except SCITIError as exc:
        fail(exc)
    if as_json:
        _print_json([r.__dict__ for r in recovered + results])
    else:
        if recovered:
            console.print(f"recovered {len(recovered)} interrupted batch(es)")
        console.print(_result_table(results))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        fail(f"{len(failed)} batch(es) failed: {failed[0].unit}: {failed[0].error}")
    busy = [r for r in results if r.status == "busy"]
    if busy:
        fail(
            f"{len(busy)} unit(s) not ingested now: {busy[0].error} (then a unit the other process "
            "committed is a duplicate, and one it left unfinished is finished by that run)",
            code=TRY_LATER,
        )


def batches(
    connector: Annotated[str | None, typer.Option("--connector", "-c", help="Only this connector.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N batches.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Batches with their counts: received = stored + quarantined + already stored (sent before with
    the same values: neither stored again nor quarantined). ``replaced``: of the stored, rows that
    replaced a record stored before (``on_change: replace``)."""
    try:
        rows = list_batches(settings(), connector=connector, limit=limit)
    except SCITIError as exc:
        fail(exc)
    if as_json:
        _print_json(rows)
        return
    # Five columns, the counts as the sum they must make: an 80-column terminal shows every figure
    # whole (ten columns cut every header and most values to "rec…").
    table = RichTable(
        title="batches",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="counts: received = stored + quarantined + already stored",
    )
    table.add_column("batch\nconnector", overflow="fold", min_width=12)
    table.add_column("unit", overflow="fold", ratio=1, min_width=9)
    table.add_column("status", min_width=9)
    table.add_column("counts", justify="right", overflow="fold")
    table.add_column("started", overflow="fold", min_width=10)
    for b in rows:
        counts = f"{b['received']:,} = {b['stored']:,} + {b['quarantined']:,} + {b['already_stored']:,}"
        if not b["reconciled"]:
            counts = f"[red]{counts}: does not add up[/]"
        if b["replaced"]:
            counts += f"\n({b['replaced']:,} replaced)"
        started = (b["started_at"] or "")[:19].replace("T", "\n")
        named = f"{b['batch_id'][:12]}\n{b['connector']}"  # a file's name is data, never markup
        table.add_row(escape(named), escape(b["unit"]), b["status"], counts, started)
    console.print(table)


def connectors(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Connectors defined under connectors/."""
    try:
        found = list_connectors(settings())
    except SCITIError as exc:
        fail(exc)
    if as_json:
        _print_json([c.model_dump(mode="json") for c in found])
        return
    table = RichTable(title="connectors")
    for col in ("name", "source", "format", "kinds", "description"):
        table.add_column(col)
    for c in found:
        table.add_row(*(escape(v) for v in (c.name, c.source, c.format, ", ".join(c.kinds), c.description)))
    console.print(table)


@quarantine_app.command("list")
def quarantine_list(
    connector: Annotated[str | None, typer.Option("--connector", "-c")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open, resubmitted or discarded")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    user: User = "",
) -> None:
    """Quarantine entries, newest first: where and why (`show` gives the raw text, audited)."""
    _acting(user, "quarantine.read")
    try:
        rows = list_quarantine(settings(), connector=connector, status=status, limit=limit)
    except SCITIError as exc:
        fail(exc)
    if as_json:
        _print_json(rows)
        return
    table = RichTable(title="quarantine")
    for col in ("id", "connector", "locator", "field", "reason", "status"):
        table.add_column(col, overflow="fold")
    for q in rows:
        # A reason quotes the data it refused: brackets in it are text, never Rich markup.
        cells = (q["connector"], q["locator"], q["field"] or "", q["reason"], q["status"])
        table.add_row(str(q["id"]), *(escape(str(c)) for c in cells))
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(
    quarantine_id: int, as_json: Annotated[bool, typer.Option("--json")] = False, user: User = ""
) -> None:
    """One entry: locator, field, reason and the raw text as received (the read is audited)."""
    name = _acting(user, "quarantine.read")
    try:
        q = show_quarantine(settings(), quarantine_id, user=name, source="cli")
    except SCITIError as exc:
        fail(exc)
    if as_json:
        _print_json(q)
        return
    for key in ("id", "connector", "batch_id", "locator", "field", "reason", "status", "resolved_by"):
        value = escape(str(q[key])) if q[key] is not None else ""
        console.print(f"[bold]{key}:[/] {value}", highlight=False)
    console.print("[bold]raw:[/]")
    if q["raw"]:
        # Exactly as received, never wrapped at the terminal's width: it is meant to be saved,
        # corrected and sent back with `resubmit --file`.
        sys.stdout.write(q["raw"] if q["raw"].endswith("\n") else q["raw"] + "\n")
        sys.stdout.flush()
    else:
        console.print("(not kept: the whole unit is in the object store)", highlight=False)


@quarantine_app.command("resubmit")
def quarantine_resubmit(
    quarantine_id: Annotated[
        int | None,
        typer.Argument(help="The entry (or leave it out and name a selection).", show_default=False),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Corrected unit (same format as the source).")
    ] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Correct the raw text in $EDITOR first.")] = False,
    ids: Annotated[
        list[int] | None,
        typer.Option("--id", help="Only these entries (repeat the option).", show_default=False),
    ] = None,
    connector: OnlyConnector = None,
    source: OnlySource = None,
    batch: OnlyBatch = None,
    reason_contains: ReasonContains = None,
    after: After = None,
    before: Before = None,
    everything: Everything = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say how many would be re-submitted.")] = False,
    limit: Annotated[int, typer.Option("--limit", help=f"At most this many (≤ {RUN_MAX:,}).")] = RUN_MAX,
    after_id: Annotated[
        int, typer.Option("--after-id", help="Continue a run: start past this entry id (the run says it).")
    ] = 0,
    up_to_id: Annotated[
        int | None, typer.Option("--up-to-id", help="Continue a run: its selection's highest id.")
    ] = None,
    user: User = "",
) -> None:
    """Re-submit a quarantined unit (corrected or as it was) through its connector, as a new batch.
    A row's correction is one row (with the header): new records go through `sciti ingest`.

    Without ID, re-submit every open entry of a selection as it was quarantined (--connector,
    --source, --batch, --reason-contains, --after, --before, --id, or --all), once its cause is
    fixed: each is its own batch; entries that stay open are counted with why (exit 1). Preview with
    --dry-run, and try a few first (--limit 10)."""
    name = _acting(user, "quarantine.resubmit")
    s = settings()
    sel = _selection(ids, connector, source, batch, reason_contains, after, before, everything)
    named = sel.named() or dry_run or after_id or up_to_id is not None or limit != RUN_MAX
    if quarantine_id is None:
        if file or edit:
            fail("--file and --edit correct one entry: pass its ID (sciti quarantine resubmit ID -f FILE)")
        _resubmit_selection(s, sel, name, dry_run=dry_run, limit=limit, after_id=after_id, up_to_id=up_to_id)
        return
    if named:
        fail("pass one entry ID, or a selection without an ID, not both")
    try:
        corrected = file.read_text(encoding="utf-8") if file else None
        if edit:
            if corrected is None:
                corrected = show_quarantine(s, quarantine_id, user=name, source="cli")["raw"] or ""
            corrected = _edit(corrected)
            if corrected is None:
                fail("the text was not changed; nothing re-submitted")
        result = resubmit(s, quarantine_id, corrected, user=name, source="cli")
    except UnitBusy as exc:
        fail(exc, code=TRY_LATER)
    except (SCITIError, OSError) as exc:
        fail(exc)
    console.print(_result_table([result]))
    if result.status == "failed":
        fail(f"re-submission failed: {result.error}")


def _resubmit_selection(
    s: Settings, sel: Selection, name: str, *, dry_run: bool, limit: int, after_id: int, up_to_id: int | None
) -> None:
    """The bulk re-submission (decision 0117): a progress bar, then the counts and why entries
    stayed open (their words are the ingest's: printed as text, never as markup)."""
    try:
        if dry_run:
            done = resubmit_selection(
                s, sel, name, source="cli", dry_run=True, limit=limit, after_id=after_id, up_to_id=up_to_id
            )
        else:
            with Progress(
                TextColumn("[bold]re-submitting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("re-submitting", total=None)
                done = resubmit_selection(
                    s, sel, name, source="cli", limit=limit, after_id=after_id, up_to_id=up_to_id,
                    progress=lambda n, total: bar.update(task, completed=n, total=total),
                )  # fmt: skip
    except SCITIError as exc:
        fail(exc)
    if dry_run:
        console.print(
            f"dry run: {done.selected:,} open entries match; {done.taken:,} would be re-submitted as "
            f"quarantined, one batch per received file, {done.remaining:,} would remain (the limit is "
            f"{done.limit:,}); "
            f"{done.already_closed:,} already closed. Nothing was changed.",
            highlight=False,
        )
        return
    table = RichTable(title="bulk re-submission", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("entries")
    table.add_column("", justify="right")
    for label, value in (
        ("selected (open when the run began)", done.selected),
        ("re-submitted and closed", done.resubmitted),
        ("still open (re-submitted, see why below)", done.still_open),
        ("closed meanwhile by another action", done.closed_meanwhile),
        ("not reached (the limit)", done.remaining),
        ("rows stored by their batches", done.stored),
        ("quarantined again (new open entries)", done.quarantined),
        ("already stored", done.already_stored),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if done.reasons:
        why = RichTable(title="why entries stayed open", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("code", "entries", "ids", "why"):
            why.add_column(col, overflow="fold")
        for g in done.reasons:
            more = " …" if g.count > len(g.ids) else ""
            why.add_row(escape(g.code), f"{g.count:,}", ", ".join(map(str, g.ids)) + more, escape(g.why))
        console.print(why)
    notes = [f"{done.seconds:,.1f} s; audit reference {done.audit_ref}"]
    if done.quarantined:
        notes.append(
            f"{done.quarantined:,} records were quarantined again: is the cause fixed? "
            "(sciti quarantine list --status open)"
        )
    if done.remaining:
        notes.append(
            f"{done.remaining:,} remain: continue with --after-id {done.after_id} --up-to-id {done.up_to_id}"
        )
    for note in notes:
        console.print(escape(note), highlight=False)
    if done.still_open:
        raise typer.Exit(1)


def _edit(text: str) -> str | None:
    """Open the text in $EDITOR; the edited text, or None when left unchanged."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        fh.write(text)
        name = fh.name
    try:
        subprocess.run([*shlex.split(os.environ.get("EDITOR", "vi")), name], check=True)
        edited = Path(name).read_text(encoding="utf-8")
    finally:
        os.unlink(name)
    return None if edited == text else edited


@quarantine_app.command("discard")
def quarantine_discard(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Entry ids (one, or several).", show_default=False)
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why these entries will not be stored.")] = "",
    connector: OnlyConnector = None,
    source: OnlySource = None,
    batch: OnlyBatch = None,
    reason_contains: ReasonContains = None,
    after: After = None,
    before: Before = None,
    everything: Everything = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say how many would be discarded.")] = False,
    limit: Annotated[int, typer.Option("--limit", help=f"At most this many (≤ {BULK_MAX:,}).")] = BULK_MAX,
    user: User = "",
) -> None:
    """Close entries without storing them; the reason and the account are kept on each (audited).
    One ID closes that entry; a selection (ids, --connector, --batch, --reason-contains, --after,
    --before) closes every open entry it takes, at most --limit a run: preview it with --dry-run."""
    name = _acting(user, "quarantine.resubmit")
    if not reason.strip():
        fail("a reason is required to discard quarantine entries (pass --reason TEXT)")
    sel = _selection(ids, connector, source, batch, reason_contains, after, before, everything)
    try:
        if len(sel.ids) == 1 and sel.named() == {"ids": list(sel.ids)} and not dry_run:
            q = discard(settings(), sel.ids[0], reason, user=name, source="cli")
            console.print(f"quarantine entry {q['id']} discarded")
            return
        with console.status("discarding…" if not dry_run else "counting…"):
            done = discard_selection(
                settings(), sel, reason, name, source="cli", dry_run=dry_run, limit=limit
            )
    except SCITIError as exc:
        fail(exc)
    if dry_run:
        console.print(
            f"dry run: {done.matched:,} open entries match; {done.closed:,} would be discarded, "
            f"{done.remaining:,} would remain (the limit is {done.limit:,}); "
            f"{done.already_closed:,} already closed. Nothing was changed.",
            highlight=False,
        )
        return
    console.print(
        f"discarded {done.closed:,} of {done.matched:,} open entries matching; "
        f"{done.skipped:,} closed meanwhile by another action, {done.already_closed:,} already closed"
        + (f"; {done.remaining:,} remain open: run it again" if done.remaining else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("batches")(batches)
    app.command("connectors")(connectors)
    app.add_typer(quarantine_app, name="quarantine")
