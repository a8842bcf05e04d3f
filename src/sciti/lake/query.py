"""SQL over the lake: DuckDB in process, reading exactly the files of the snapshots asked for.

Users write ``SELECT ... FROM std.declarations JOIN raw.kcs ...``. For each query we open a
fresh in-memory DuckDB connection, create one schema per zone and one view per table the query
mentions (see :mod:`sciti.lake.views`), then lock the connection down: external access off,
only the views' own files readable, configuration locked. A query therefore cannot read arbitrary
files, attach databases or load extensions, and concurrent queries at different snapshots never
share state. Creating the database costs ~20 ms; tables are loaded only when their metadata file
changed, and a snapshot's plan is cached (decision 0062).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from sciti.lake.catalog import Lake
from sciti.lake.errors import QueryError
from sciti.lake.running import TABLES_REMEDY, RunningQuery, StopSignal, query_error
from sciti.lake.views import TableView, ViewRule, quote_ident, quote_literal, ruled_select, table_view

AsOf = int | str | datetime | None
Rules = Mapping[str, ViewRule]

# zone.name, each part bare or double-quoted. Over-matching (aliases, strings) is harmless: names
# that are not lake tables are skipped. A bare zone starts only where a word starts: without the
# lookbehind every position inside a long word (a 16,000-character literal) was tried again, each
# scanning to the word's end, and the scan took seconds holding the GIL (the whole server stalled).
# No table reference is lost: DuckDB's grammar has none that starts inside a word (``1std.x`` does
# not parse). A missed table would get no view, so its query would fail, not read around a rule.
_QUALIFIED = re.compile(r'(?:"([^"]+)"|(?<!\w)([A-Za-z_]\w*))\s*\.\s*(?:"([^"]+)"|([A-Za-z_]\w*))')

_ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
# DuckDB files INSTALL under LOAD, CHECKPOINT under CALL and USE under SET: a refusal names the
# statement's own first word(s) instead, and these take their second word along.
_TWO_WORDS = {"FORCE", "EXPORT", "IMPORT"}
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one user query may take (decision 0098); None leaves DuckDB's own default.

    ``seconds``: wall time from the connection's start until the caller closes the result, enforced
    with ``connection.interrupt()`` from a timer (DuckDB has no statement timeout). ``memory``:
    DuckDB's ``memory_limit`` ("25%", "4GB"); past it operators spill to the temp folder.
    ``threads``: DuckDB's worker threads for this query. Only the user-query path sets limits:
    ingestion and batch scoring call :func:`query` without them.
    """

    seconds: float | None = None
    memory: str | None = None
    threads: int | None = None


class UnknownTables(QueryError):
    """Tables the caller required are not in the lake (``details["tables"]``)."""

    code = "unknown_table"
    http_status = 400


def query(
    lake: Lake,
    sql: str,
    *,
    as_of: AsOf = None,
    tables: set[str] | None = None,
    rules: Rules | None = None,
    limits: Limits | None = None,
) -> pa.Table:
    """Run one read-only SQL statement over the lake and return all rows.

    ``as_of``: a snapshot id, an ISO timestamp or a datetime (naive = UTC); every table is read as it
    was then (the latest snapshot at or before that time). ``tables``: if given, only these tables
    are visible to the query (others are reported as unknown). ``rules``: a caller's view of each
    table it may read (row filter, column masks); tables without a rule are invisible. The caller
    must vet the SQL itself (sciti.access does): views read their files, so a query that may call
    file-reading functions could read those files around the masks. ``limits``: see :class:`Limits`.
    """
    conn = connect(lake, sql, as_of=as_of, tables=tables, rules=rules, limits=limits)
    running = RunningQuery(conn, limits)
    try:
        return running.run(lambda: conn.sql(sql).to_arrow_table())
    finally:
        running.close()


def query_reader(
    lake: Lake,
    sql: str,
    *,
    as_of: AsOf = None,
    tables: set[str] | None = None,
    rules: Rules | None = None,
    batch_rows: int = 65_536,
    limits: Limits | None = None,
) -> pa.RecordBatchReader:
    """Like :func:`query`, streamed: results far larger than memory can be written out batch by batch."""
    return open_reader(
        lake, sql, as_of=as_of, tables=tables, rules=rules, batch_rows=batch_rows, limits=limits
    ).reader


def open_reader(
    lake: Lake,
    sql: str,
    *,
    as_of: AsOf = None,
    tables: set[str] | None = None,
    rules: Rules | None = None,
    batch_rows: int = 65_536,
    limits: Limits | None = None,
    required: set[str] | None = None,
    stop: StopSignal | None = None,
) -> RunningQuery:
    """:func:`query_reader` with its handle: close it when done (reading to the end closes it too).

    ``required``: tables that must exist, else UnknownTables (before DuckDB says it its own way);
    read ``as_of`` a time they have no snapshot for, they are an error too, saying why (history
    expired, or not created yet), where other callers read an empty table. ``stop``: a signal
    another thread may use to stop the query (see :class:`StopSignal`).
    """
    conn = connect(lake, sql, as_of=as_of, tables=tables, rules=rules, limits=limits, required=required)
    running = RunningQuery(conn, limits)
    try:
        if stop is not None:
            stop.watch(running)
        reader = running.run(lambda: conn.sql(sql).to_arrow_reader(batch_rows))
    except BaseException:
        running.close()
        raise

    def batches() -> Iterator[pa.RecordBatch]:
        # The connection must outlive the reader; close it when the caller is done (or drops it).
        try:
            while True:
                try:
                    batch = running.run(reader.read_next_batch)
                except StopIteration:
                    return
                yield batch
        finally:
            running.close()

    running.reader = pa.RecordBatchReader.from_batches(reader.schema, batches())
    return running


def connect(
    lake: Lake,
    sql: str,
    *,
    as_of: AsOf = None,
    tables: set[str] | None = None,
    rules: Rules | None = None,
    limits: Limits | None = None,
    required: set[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A locked-down DuckDB connection with a view for every lake table ``sql`` mentions."""
    _check_statement(sql, select_only=rules is not None)
    if rules is not None:
        tables = set(rules) if tables is None else tables & set(rules)
    locations = _table_locations(lake)
    missing = sorted(t for t in required or () if t not in locations)
    if missing:
        raise UnknownTables(
            f"table {missing[0]} does not exist", remedy=TABLES_REMEDY, details={"tables": missing}
        )
    loaded = _referenced_tables(lake, locations, sql, tables)
    named = set(loaded) if required is not None else set()
    if rules is not None:
        loaded = _with_dependencies(lake, locations, loaded, rules)
    snapshots = _pick_snapshots(loaded, as_of, named)
    views = [table_view(ident, table, snapshots[ident]) for ident, table in loaded.items()]

    conn = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        if limits is not None and limits.memory is not None:
            conn.execute(f"SET memory_limit = {quote_literal(limits.memory)}")
        if limits is not None and limits.threads is not None:
            conn.execute(f"SET threads = {max(1, int(limits.threads))}")
        # Spills go to the system temp folder, not the working directory.
        conn.execute(
            f"SET temp_directory = {quote_literal(str(Path(tempfile.gettempdir()) / 'sciti-duckdb'))}"
        )
        paths = sorted({p for v in views for p in v.paths})
        if paths:
            conn.execute(f"SET allowed_paths = [{', '.join(quote_literal(p) for p in paths)}]")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        for view in views:
            try:
                _create_view(conn, view, None if rules is None else rules[view.ident])
            except duckdb.Error as exc:
                raise QueryError(
                    f"lake table {view.ident} (snapshot {view.snapshot_id}) cannot be read: "
                    f"{query_error(exc).message}",
                    remedy="its data files may be missing or damaged; see `sciti tables` and its history",
                ) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _create_view(conn: duckdb.DuckDBPyConnection, view: TableView, rule: ViewRule | None) -> None:
    zone, name = view.ident.split(".", 1)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(zone)}")
    target = f"{quote_ident(zone)}.{quote_ident(name)}"
    if view.arrow is not None:
        source = f"__sciti_arrow_{zone}_{name}"
        conn.register(source, view.arrow)
        if rule is None:
            conn.execute(f"CREATE VIEW {target} AS SELECT * FROM {quote_ident(source)}")
            return
        # Under a rule the clear rows must not stay reachable by name: copy the ruled rows, drop the source.
        columns = view.columns or tuple(view.arrow.schema.names)
        select = ruled_select(f"SELECT * FROM {quote_ident(source)}", columns, rule)
        conn.execute(f"CREATE TABLE {target} AS {select}")
        conn.unregister(source)
    elif rule is None:
        conn.execute(f"CREATE VIEW {target} AS {view.select_sql}")
    else:
        conn.execute(f"CREATE VIEW {target} AS {ruled_select(view.select_sql or '', view.columns, rule)}")


def _with_dependencies(
    lake: Lake, locations: dict[str, str], loaded: dict[str, Table], rules: Rules
) -> dict[str, Table]:
    """Add the tables the rules' row filters read, ordered so each comes before its readers."""
    ordered: dict[str, Table] = {}

    def visit(ident: str, table: Table | None, path: tuple[str, ...]) -> None:
        if ident in ordered or ident in path:
            return
        for dep in rules[ident].depends:
            if dep in rules and dep not in ordered:
                dep_table = loaded.get(dep) or _load(lake, locations, dep)
                if dep_table is not None:
                    visit(dep, dep_table, (*path, ident))
        if table is not None:
            ordered[ident] = table

    for ident, table in loaded.items():
        visit(ident, table, ())
    return ordered


def _check_statement(sql: str, *, select_only: bool = False) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise query_error(exc) from None
    if len(statements) != 1:
        raise QueryError(
            f"expected one SQL statement, got {len(statements)}", remedy="run one query at a time"
        )
    allowed = {duckdb.StatementType.SELECT} if select_only else _ALLOWED_STATEMENTS
    if statements[0].type not in allowed:
        raise QueryError(
            f"only queries can run on the lake, not {statement_name(statements[0])}",
            remedy="use SELECT, WITH, FROM, DESCRIBE, SUMMARIZE or EXPLAIN; ingestion changes the lake",
        )


def statement_name(statement: Any) -> str:
    """The statement as its author wrote it: ``INSTALL``, ``CHECKPOINT``, ``USE``, ``FORCE INSTALL``.

    DuckDB's statement type groups several statements (INSTALL is a LOAD, CHECKPOINT a CALL, USE a
    SET); a refusal naming the type would name a statement the author never sent.
    """
    text = str(getattr(statement, "query", "") or "")
    while True:  # leading blanks and comments (a loop: no nested regex quantifiers on user text)
        text = text.lstrip()
        if text.startswith("--"):
            text = text.partition("\n")[2]
        elif text.startswith("/*"):
            end = text.find("*/")
            text = text[end + 2 :] if end >= 0 else ""
        else:
            break
    words = re.findall(r"[A-Za-z_]+", text[:200])
    if not words or not text[:1].isalpha():
        return str(statement.type.name)
    first = words[0].upper()
    if first in _TWO_WORDS and len(words) > 1:
        return f"{first} {words[1].upper()}"
    return first


def _table_locations(lake: Lake) -> dict[str, str]:
    """Each table's current metadata file: one catalog query per connection, whatever the tables."""
    try:
        return lake.table_locations()
    except Exception as exc:  # the catalog database is unreachable: say so, in one line
        raise QueryError(
            f"cannot read the lake catalog: {exc}", remedy="check catalog_uri in the settings"
        ) from exc


def _load(lake: Lake, locations: dict[str, str], ident: str) -> Table | None:
    """The table at its current metadata; loaded tables are reused until a commit moves it on."""
    location = locations.get(ident)
    if location is None:
        return None
    try:
        return lake.table_at(ident, location)
    except (NoSuchTableError, NoSuchNamespaceError):  # dropped since the catalog was read
        return None


def _referenced_tables(
    lake: Lake, locations: dict[str, str], sql: str, allowed: set[str] | None
) -> dict[str, Table]:
    """Lake tables the SQL mentions (only these get views: a lake may hold hundreds)."""
    found: dict[str, Table] = {}
    for m in _QUALIFIED.finditer(sql):
        # Lake tables are lower case, and DuckDB matches names in any case, quoted or not:
        # "std"."DECLARATIONS" reads std.declarations.
        zone = (m.group(1) or m.group(2)).lower()
        name = (m.group(3) or m.group(4)).lower()
        ident = f"{zone}.{name}"
        if ident in found or (allowed is not None and ident not in allowed):
            continue
        table = _load(lake, locations, ident)
        if table is not None:
            found[ident] = table
    return found


def parse_as_of(as_of: AsOf) -> int | datetime | None:
    """A snapshot id (int, or a string of digits) or an aware UTC datetime (ISO text or datetime)."""
    if as_of is None or isinstance(as_of, int):
        return as_of
    if isinstance(as_of, str):
        text = as_of.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            as_of = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(
                f"as-of {text!r} is neither a snapshot id nor an ISO timestamp",
                remedy="give a snapshot id from `sciti tables` or a time like 2026-01-31T12:00:00Z",
            ) from None
    if isinstance(as_of, datetime):
        return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
    raise QueryError(f"as-of {as_of!r} has an unsupported type", remedy="use a snapshot id or a timestamp")


def _pick_snapshots(
    loaded: dict[str, Table], as_of: AsOf, named: set[str] | None = None
) -> dict[str, Snapshot | None]:
    """Which snapshot of each table to read: a snapshot id pins its table, the rest read as of its time.

    A ``named`` table (the user path's) with no snapshot at that time is an error, not an empty
    table: its history may have been expired, or it did not exist yet. Other tables read empty then
    (a rule's row filter reading nothing hides rows rather than showing them; internal callers
    such as training read a table as it was, empty before its first data).
    """
    point = parse_as_of(as_of)
    if point is None:
        return {ident: t.current_snapshot() for ident, t in loaded.items()}
    picked: dict[str, Snapshot | None] = {}
    if isinstance(point, int):
        owners = [(i, s) for i, t in loaded.items() if (s := t.snapshot_by_id(point)) is not None]
        if not owners:
            if not loaded:
                return {}
            raise QueryError(
                f"snapshot {point} is not a snapshot of {', '.join(sorted(loaded))}",
                remedy="see a table's snapshots with `sciti tables` or Lake.history()",
            )
        ident, snap = owners[0]
        picked[ident] = snap
        millis = snap.timestamp_ms
    else:
        millis = int(point.timestamp() * 1000)
    for ident, table in loaded.items():
        if ident not in picked:
            picked[ident] = table.snapshot_as_of_timestamp(millis, inclusive=True)
            if picked[ident] is None and named and ident in named:
                _no_snapshot_then(ident, table, millis)
    return picked


def _no_snapshot_then(ident: str, table: Table, millis: int) -> None:
    """Raise why ``table`` has no snapshot at ``millis``, unless it legitimately was empty then."""
    snapshots = table.metadata.snapshots
    if not snapshots:
        return  # never written: empty at any time
    oldest = min(snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    kept = {s.snapshot_id for s in snapshots}
    at = _when(millis)
    # Expired history: in format v2 every snapshot takes the next sequence number (from 1), so an
    # oldest one numbered past 1 had predecessors (the lake's expiry also clears its parent id).
    expired = (oldest.parent_snapshot_id is not None and oldest.parent_snapshot_id not in kept) or (
        table.metadata.format_version >= 2 and (oldest.sequence_number or 0) > 1
    )
    if expired:
        raise QueryError(
            f"{ident} has no snapshot at or before {at}: its oldest kept snapshot is from "
            f"{_when(oldest.timestamp_ms)} (history before that was expired)",
            remedy="ask for a later time; lake upkeep keeps lake_keep_days of history",
            details={"table": ident, "oldest_snapshot_at": _when(oldest.timestamp_ms)},
        )
    # The oldest snapshot is the table's first: it was created with its first metadata file (the
    # metadata log keeps the earlier files' times), empty until that first snapshot.
    created = min([e.timestamp_ms for e in table.metadata.metadata_log] + [oldest.timestamp_ms])
    if millis < created:
        raise QueryError(
            f"{ident} did not exist yet at {at}; it was created {_when(created)}",
            remedy="ask for a later time, or leave the table out of the query",
            details={"table": ident, "created_at": _when(created)},
        )


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
