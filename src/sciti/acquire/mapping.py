"""Table-style mapping: staged source rows -> validated canonical rows per record kind, in DuckDB.

All outputs of a connector are compiled into ONE pass over the staged rows (``Staged.source``):
the connector's expressions, the trimmed text of each, then the model's fast-path value and
certainty per field (``sciti.model.sql``, generated from the kind's FieldDefs). Rows every output
is certain of go straight to Parquet files with DuckDB ``COPY`` (with one output, from the pass
itself: docs/decisions/0014); the few others are decided by the model's ``validate_table`` (which
also words the reason), so both paths give the model's outcome. A source row rejected by any
output is quarantined once and stored by none. So is a row holding a record another batch already
stored, or one an earlier row of the batch holds (``sciti.acquire.stored_keys``, decision 0100).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import duckdb.func as udf
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.acquire.checks_sql import compile_checks, kept_column, kinds, output_select, value_columns
from sciti.acquire.connector import DEFINITION_FILE, Connector, Output
from sciti.acquire.errors import AcquireError, ConnectorError, MissingColumn
from sciti.acquire.formats.tabular import ARROW_SOURCE, Staged, quote_ident, sql_str
from sciti.acquire.items import Rejected
from sciti.acquire.row_keys import check_rows, rid_sql
from sciti.acquire.stored_keys import Changes, StoredIds
from sciti.acquire.validation import Problem, decide_table, describe
from sciti.model import RecordKind
from sciti.model.sql import code_tables

# Parquet dictionaries only for columns with at most this many distinct values per row group
# (codes, countries, offices); identifiers and record ids are written plain. Building a dictionary
# for a near-unique text column costs as much as the rest of the write.
DICTIONARY_LIMIT = 2000


@dataclass
class Mapped:
    """What mapping one unit produced."""

    tables: dict[str, pa.Table] = field(default_factory=dict)  # kind -> rows with provenance (record path)
    files: dict[str, list[str]] = field(default_factory=dict)  # kind -> Parquet files written (table path)
    written: dict[str, int] = field(default_factory=dict)  # kind -> rows in ``files``
    rejects: list[Rejected] = field(default_factory=list)
    received: int = 0
    stored: int = 0
    already_stored: int = 0  # rows or units whose records are all stored already, same values (0105)
    # Of the stored rows, those replacing stored records (``on_change: replace``, decision 0112).
    changes: Changes = field(default_factory=Changes)
    parts: dict[str, int] = field(default_factory=dict)  # part name -> records received (a unit's)


@dataclass(frozen=True)
class Target:
    """Where a kind's Parquet files go: the lake table's data folder and its Iceberg field ids."""

    folder: Path
    field_ids: dict[str, int]


def _decide_suspects(
    con: duckdb.DuckDBPyConnection, connector: Connector, lists: Any, bad: dict[int, list[Problem]]
) -> pa.Table | None:
    """Let the model decide the rows the fast path was not certain of.

    Adds rejected rows to ``bad``; returns the accepted ones as a table shaped like ``m`` (typed by
    the model), or None when there are none.
    """
    outputs = kinds(connector)
    sources, _, alias = value_columns(connector)
    cols = [
        "__row",
        *(f"__in{i}" for i, _, _ in outputs),
        *(quote_ident(kept_column(r)) for r in sources.values()),
    ]
    suspects = con.sql(f"SELECT {', '.join(cols)} FROM m WHERE NOT __ok ORDER BY 1").to_arrow_table()
    if not suspects.num_rows:
        return None
    rows = suspects.column("__row").to_pylist()
    known = set(bad)  # already rejected (unreadable bytes): their reason says it all
    accepted: list[tuple[int, Output, pa.Table, pa.Array]] = []
    for i, out, kind in outputs:
        applies = pc.fill_null(suspects.column(f"__in{i}"), False)
        index = pc.indices_nonzero(applies)
        sub = pa.table(
            {n: suspects.column(kept_column(sources[expr])).take(index) for n, expr in out.fields.items()}
        )
        rejected, values = decide_table(kind, sub, lists)
        for k, probs in rejected.items():
            row = rows[index[k].as_py()]
            if row not in known:
                bad.setdefault(row, []).extend(probs)
        accepted.append((i, out, values, index))
    keep = [k for k, r in enumerate(rows) if r not in bad]
    if not keep:
        return None
    columns: dict[str, pa.Array] = {"__row": pa.array([rows[k] for k in keep], pa.int64())}
    for i, out, valid, index in accepted:
        position = {idx: p for p, idx in enumerate(index.to_pylist())}
        take = pa.array([position.get(k) for k in keep], pa.int64())
        columns[f"__in{i}"] = pc.is_valid(take)
        for n in out.fields:
            values = valid.column(n).take(take)
            name = alias[(i, n)]  # a shared column: rows outside this output take the other's value
            columns[name] = pc.coalesce(columns[name], values) if name in columns else values
    return pa.table(columns)


def _bind(con: duckdb.DuckDBPyConnection, connector: Connector, staged: Staged, sql: str) -> None:
    """Check that ``compile_checks``' SQL binds over the staged rows (without running it); for
    self-describing rows (JSON) a key no row has is a column of nulls."""
    for _ in range(sum(len(o.fields) for o in connector.outputs) + 1):
        try:
            con.execute(f"EXPLAIN {sql}").fetchall()
            return
        except duckdb.BinderException as exc:
            missing = re.search(r'column "([^"]+)" not found', str(exc))
            if missing is None:
                raise ConnectorError(
                    f"connector {connector.name}: {exc}", remedy="fix the SQL in `outputs`"
                ) from None
            if not staged.sparse:
                raise _missing_column(connector, staged, missing.group(1)) from None
            con.execute(f"ALTER TABLE src ADD COLUMN {quote_ident(missing.group(1))} VARCHAR")
        except duckdb.Error as exc:
            raise _cannot_compute(connector, staged, exc) from None


def _missing_column(connector: Connector, staged: Staged, column: str) -> MissingColumn:
    """The header lacks a column the connector maps. A cut-short export and a misspelt mapping look
    the same from here, so the batch fails as a whole (nothing committed, retried as it stands)
    instead of quarantining every row as one entry: once the file or the connector is fixed the
    rows come in, each counted (decision 0094)."""
    where = connector.folder / DEFINITION_FILE if connector.folder else f"{connector.name}/{DEFINITION_FILE}"
    return MissingColumn(
        f"the header has no column {column!r}, which connector {connector.name} maps ({where}); "
        f"the header's columns are: {', '.join(staged.columns)}",
        remedy=(
            "if the file is incomplete (a cut-short export), send it again whole; if the connector "
            f"names the column wrongly, correct `outputs` in {where} and ingest again: nothing of "
            "this file was stored, and its batch is retried (a drop folder retries it by itself)"
        ),
    )


def _cannot_compute(connector: Connector, staged: Staged, exc: Exception) -> ConnectorError:
    return ConnectorError(
        f"connector {connector.name}: the outputs cannot be computed: {exc}",
        remedy=f"fix `outputs` in the connector; source columns are: {', '.join(staged.columns)}",
    )


def _raw_sql(staged: Staged) -> str:
    if staged.raw_sql:
        return staged.raw_sql()
    pairs = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in staged.columns)
    return f"to_json(struct_pack({pairs}))"


def _run_checks(con: duckdb.DuckDBPyConnection, connector: Connector, staged: Staged) -> None:
    """Materialise ``m`` (``compile_checks``) over the staged rows."""
    sql = compile_checks(
        connector,
        source=staged.source,
        raw=_raw_sql(staged),
        suspect=staged.suspect_sql,
        plain=staged.plain_columns,
    )
    try:  # bind and run at once: compiling the pass costs as much as running it on a small unit
        con.execute(sql)
        return
    except duckdb.BinderException:
        pass  # a column is missing: _bind names it (or adds it, for sparse rows), then run again
    except duckdb.Error as exc:
        raise _cannot_compute(connector, staged, exc) from None
    _bind(con, connector, staged, sql)
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise _cannot_compute(connector, staged, exc) from None


def _direct_pass(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    write: Callable[[str, str], int],
    ok: str = "__ok",
) -> str:
    """The one-output fast path: ONE pass reads the staged rows, maps and checks them and writes
    the rows the fast path is certain of straight to Parquet (``write(select_from, where)``). The
    ordinals of the others (usually a handful) are handed to Python as they pass; returns a
    relation of those rows' source columns (with ``__row``) for the model to decide. ``ok``: the
    condition for writing a row (the fast path's certainty, and its record not stored yet)."""
    aside: list[pa.Array] = []

    def keep_aside(rows: Any, ok: Any) -> pa.Array:
        # DuckDB calls this only for the rows that are not certain (the OR below skips the others);
        # ``ok`` keeps the outcome right however the filter is evaluated.
        rows, ok = (a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in (rows, ok))
        aside.append(pc.filter(rows, pc.invert(pc.fill_null(ok, False))))
        return pa.array(np.zeros(len(rows), dtype=bool))

    con.create_function(
        "sciti_aside",
        keep_aside,
        [duckdb.sqltype("BIGINT"), duckdb.sqltype("BOOLEAN")],
        duckdb.sqltype("BOOLEAN"),
        type=udf.PythonUDFType.ARROW,
        null_handling=udf.FunctionNullHandling.SPECIAL,
        side_effects=True,
    )
    try:
        sql = compile_checks(
            connector,
            source=staged.source,
            suspect=staged.suspect_sql,
            select_only=True,
            plain=staged.plain_columns,
        )
        _bind(con, connector, staged, sql)
        try:
            written = write(f"({sql})", f"{ok} OR sciti_aside(__row, {ok})")
        except duckdb.Error as exc:
            raise _cannot_compute(connector, staged, exc) from None
    finally:
        con.remove_function("sciti_aside")
    ids = pa.concat_arrays(aside) if aside else pa.array([], pa.int64())
    if written + len(ids) != staged.rows:  # every row is either written or handed over
        raise AcquireError(
            f"the mapping pass saw {written + len(ids)} rows of {staged.rows}",
            remedy="report this as a bug; the batch was not committed and can be retried",
        )
    if staged.arrow is not None:  # ordinals are positions in the Arrow table: take them
        con.register("aside_rows", staged.arrow.take(ids))
        return "(SELECT * FROM aside_rows)"
    con.register("aside_ids", pa.table({"__row": ids.cast(pa.int64())}))
    return f"(SELECT s.* FROM {staged.source} AS s SEMI JOIN aside_ids AS a ON s.__row = a.__row)"


def map_staged(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    *,
    batch_id: str,
    ingested_at: datetime,
    lists: Any,
    target: Callable[[str], Target],
    stored: Callable[[str], StoredIds | None] | None = None,
    unit_of: Callable[[str], str] | None = None,
) -> Mapped:
    """Validate every output over the staged rows; quarantine bad rows once; write each kind's valid
    rows (with provenance) as Parquet files into ``target(kind).folder``, not yet committed.

    One output over text columns (a CSV): one pass writes the certain rows and hands the others
    over (``_direct_pass``). Otherwise the pass materialises ``m`` and each output is copied from
    it. Either way the uncertain rows are decided by the model and the accepted ones written too.

    ``stored(kind)``: the rows its table holds from other batches; a source row with a record
    already there, or held by an earlier row of the batch, is counted as already stored (the same
    values) or quarantined (decisions 0100, 0105).
    """
    for name, table in code_tables(lists).items():
        con.register(name, table)
    # Rows carry their ordinal (``__row``), so no step needs insertion order.
    con.execute("SET preserve_insertion_order = false")
    outputs = kinds(connector)
    mapped = Mapped(received=staged.received)
    mapped.rejects = list(staged.rejects)
    checks: dict[int, StoredIds] = {}  # output -> its table's rows of other batches (view __stored<i>)
    for i, _, kind in outputs:
        found = stored(kind.name) if stored is not None else None
        if found is not None:
            found.view(con, f"__stored{i}")
            checks[i] = found

    def write(i: int, out: Output, kind: RecordKind, relation: str, where: str) -> int:
        goal = target(kind.name)
        # One folder per write (batch id first): DuckDB writes one file per thread, in parallel.
        folder = goal.folder / f"{batch_id}-{uuid.uuid4().hex[:12]}"
        by_kind = {o.kind: (j, o) for j, o, _ in outputs}
        select, columns = output_select(connector, kind, i, out, by_kind, staged, batch_id, ingested_at)
        ids = ", ".join(f"{quote_ident(c)}: {goal.field_ids[c]}" for c in columns)
        found = con.execute(
            f"COPY (SELECT {select} FROM {relation} AS o WHERE {where}) TO {sql_str(str(folder))} "
            f"(FORMAT parquet, COMPRESSION snappy, PARQUET_VERSION V2, PER_THREAD_OUTPUT true, "
            f"DICTIONARY_SIZE_LIMIT {DICTIONARY_LIMIT}, "
            f"FILENAME_PATTERN {sql_str(batch_id + '-{i}')}, FIELD_IDS {{{ids}}})"
        ).fetchall()
        count = int(found[0][0]) if found else 0
        if count:
            mapped.files.setdefault(kind.name, []).extend(sorted(str(p) for p in folder.glob("*.parquet")))
        else:
            shutil.rmtree(folder, ignore_errors=True)
        mapped.written[kind.name] = mapped.written.get(kind.name, 0) + count
        return count

    if len(outputs) == 1 and staged.all_text:
        i, out, kind = outputs[0]
        ok = f"(__ok AND NOT {rid_sql(connector, kind, i)} IN (SELECT record_id FROM __stored{i}))"
        aside = _direct_pass(
            con,
            connector,
            staged,
            lambda rel, where: write(i, out, kind, rel, where),
            ok if i in checks else "__ok",
        )
        _run_checks(con, connector, replace(staged, source=aside))  # the few uncertain rows as ``m``
        bad, vals = _decide(con, connector, staged, lists)
        if _twice_in_pass(con, mapped.files.get(kind.name, []), vals, rid_sql(connector, kind, i)):
            # The pass wrote one record twice, or holds back a copy of one it wrote: it sees one row
            # at a time, so map the unit again the general way, which sees the batch whole (0105).
            for folder in {Path(file).parent for file in mapped.files.pop(kind.name)}:
                shutil.rmtree(folder, ignore_errors=True)  # one folder per write, this batch's own
            mapped.written.pop(kind.name, None)
            _run_checks(con, connector, staged)
            bad, vals = _decide(con, connector, staged, lists)
        _unstage(con, staged)
    else:
        _run_checks(con, connector, staged)
        _unstage(con, staged)  # free the source rows before writing
        bad, vals = _decide(con, connector, staged, lists)
    already = check_rows(
        con, connector, staged, f"({vals})", checks, bad, batch_id, ingested_at, unit_of, mapped.changes
    )
    if bad:
        con.register("bad_rows", pa.table({"__row": pa.array(sorted(bad), pa.int64())}))
        mapped.rejects += _row_rejects(con, staged, bad)
    if bad or already:
        con.register("skip_rows", pa.table({"__row": pa.array(sorted({*bad, *already}), pa.int64())}))
        vals = f"SELECT * FROM ({vals}) WHERE __row NOT IN (SELECT __row FROM skip_rows)"
    mapped.stored = staged.rows - len(bad) - len(already)
    mapped.already_stored = len(already)
    for i, out, kind in outputs:
        write(i, out, kind, f"({vals})", f"__in{i}")
    con.execute("DROP TABLE m")
    return mapped


def _decide(
    con: duckdb.DuckDBPyConnection, connector: Connector, staged: Staged, lists: Any
) -> tuple[dict[int, list[Problem]], str]:
    """The rows of ``m`` rejected so far, and a query of the accepted ones (the model decides the
    rows the fast path was not certain of)."""
    bad: dict[int, list[Problem]] = {row: [(r.field, r.reason)] for row, r in staged.rejected_rows.items()}
    fixed = _decide_suspects(con, connector, lists, bad)
    vals = "SELECT * EXCLUDE (__ok) FROM m WHERE __ok"
    if fixed is not None:
        con.register("fixed_rows", fixed)
        vals = f"{vals} UNION ALL BY NAME SELECT * FROM fixed_rows"
    return bad, vals


def _twice_in_pass(con: duckdb.DuckDBPyConnection, files: list[str], vals: str, rid: str) -> bool:
    """Whether the one-output pass wrote a record id twice, or one of the rows it handed over
    (``vals``, a few) has a record id it wrote. Ids are counted by their 64-bit hash (a few per
    cent of the ingest's time): a collision only sends the unit the general way."""
    if not files:
        return False
    written = f"read_parquet([{', '.join(sql_str(f) for f in files)}])"
    found = con.execute(
        f"SELECT (SELECT count(*) <> count(DISTINCT hash(record_id)) FROM {written}) "
        f"OR EXISTS (SELECT 1 FROM {written} WHERE record_id IN (SELECT {rid} FROM ({vals}) AS o))"
    ).fetchone()
    return bool(found and found[0])


def _unstage(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Drop the staged rows (a ``src`` table or an Arrow table registered by the CSV reader)."""
    con.execute("DROP TABLE IF EXISTS src")
    con.unregister(ARROW_SOURCE)
    staged.arrow = None


def _row_rejects(
    con: duckdb.DuckDBPyConnection, staged: Staged, bad: dict[int, list[Problem]]
) -> list[Rejected]:
    """One quarantine entry per bad source row, with its locator and the row as source text."""
    found = con.execute(
        f"SELECT m.__row, {staged.locator_sql('m.__row')}, m.__raw FROM m "
        "SEMI JOIN bad_rows AS b ON m.__row = b.__row ORDER BY 1"
    ).fetchall()
    out = []
    for row, locator, text in found:
        probs = bad[row]
        out.append(
            Rejected(
                locator=locator,
                reason=describe(probs),
                field=probs[0][0],
                raw=text,
                details={"problems": [{"field": f, "reason": r} for f, r in probs]},
            )
        )
    return out
