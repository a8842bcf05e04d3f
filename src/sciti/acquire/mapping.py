"""Table-style mapping: staged source rows -> validated canonical rows per record kind, in DuckDB.

All outputs of a connector are compiled into ONE statement over the staged table ``src``: the
connector's expressions, the trimmed text of each, then the model's fast-path value and certainty
per field (``sciti.model.sql``, generated from the kind's FieldDefs). Rows every output is certain
of go straight to Parquet files with DuckDB ``COPY``; the few others are decided by the model's
``validate_table`` (which also words the reason), so both paths give the model's outcome. A source
row rejected by any output is quarantined once and stored by none.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sciti.acquire.connector import Connector, Output
from sciti.acquire.errors import AcquireError, ConnectorError
from sciti.acquire.formats.tabular import Staged, quote_ident, sql_str
from sciti.acquire.items import Rejected
from sciti.acquire.validation import Problem, decide_table, describe
from sciti.model import PARENT_COLUMN, PROVENANCE_NAMES, RecordKind, get_kind
from sciti.model.sql import (
    SQL_TYPES,
    bare_text_sql,
    clean_text_sql,
    code_tables,
    field_sql,
    key_text_sql,
    needs_trim,
    record_id_sql,
)


@dataclass
class Mapped:
    """What mapping one unit produced."""

    tables: dict[str, pa.Table] = field(default_factory=dict)  # kind -> rows with provenance (record path)
    files: dict[str, list[str]] = field(default_factory=dict)  # kind -> Parquet files written (table path)
    written: dict[str, int] = field(default_factory=dict)  # kind -> rows in ``files``
    rejects: list[Rejected] = field(default_factory=list)
    received: int = 0
    stored: int = 0


@dataclass(frozen=True)
class Target:
    """Where a kind's Parquet files go: the lake table's data folder and its Iceberg field ids."""

    folder: Path
    field_ids: dict[str, int]


def _col(prefix: str, i: int, name: str) -> str:
    return quote_ident(f"{prefix}{i}_{name}")


def _kinds(connector: Connector) -> list[tuple[int, Output, RecordKind]]:
    found = []
    for i, out in enumerate(connector.outputs):
        kind = get_kind(out.kind)
        for n in out.fields:
            kind.field(n)  # an unknown field name is the connector's mistake: say so now
        missing = [k for k in kind.key if k not in out.fields]
        if missing:
            raise ConnectorError(
                f"output {kind.name} does not map key field {missing[0]!r}",
                remedy=f"map every key field: {', '.join(kind.key)}",
            )
        found.append((i, out, kind))
    return found


def value_columns(
    connector: Connector,
) -> tuple[dict[str, str], dict[tuple[str, bool], str], dict[tuple[int, str], str]]:
    """(expression -> its column ``r<k>``, (expression, trimmed) -> its text column ``t<k>`` or
    ``u<k>``, (output, field) -> its value column in ``m``).

    Outputs often map the same expression to fields of the same type (a declaration id goes to
    three kinds): such fields share one column, so each distinct value is computed once.
    """
    sources: dict[str, str] = {}
    texts: dict[tuple[str, bool], str] = {}
    canon: dict[tuple[str, str], str] = {}
    alias: dict[tuple[int, str], str] = {}
    for i, out, kind in _kinds(connector):
        for n, expr in out.fields.items():
            r = sources.setdefault(expr, f"r{len(sources)}")
            trim = needs_trim(kind.field(n))
            t = texts.setdefault((expr, trim), f"{'t' if trim else 'u'}{r[1:]}")
            value = field_sql(kind.field(n), quote_ident(t)).value
            alias[(i, n)] = canon.setdefault((expr, value), f"v{i}_{n}")
    return sources, texts, alias


def compile_checks(connector: Connector, table: str = "m") -> str:
    """CREATE TABLE ``table``: per source row ``__row``, ``__in<i>`` (output i applies), the typed
    values (columns named by ``value_columns``) and ``__ok`` (every applying output is certain of
    every field)."""
    sources, texts, alias = value_columns(connector)
    raw, text, typed, oks = ["rowid AS __row"], ["__row"], ["__row"], []
    for expr, r in sources.items():
        raw.append(f"({expr}) AS {quote_ident(r)}")
    for (expr, trim), t in texts.items():
        text.append(
            f"{(clean_text_sql if trim else bare_text_sql)(quote_ident(sources[expr]))} AS {quote_ident(t)}"
        )
    done: set[str] = set()
    for i, out, kind in _kinds(connector):
        into = f"__in{i}"
        raw.append(f"coalesce(({out.where}), false) AS {into}" if out.where else f"true AS {into}")
        text.append(into)
        typed.append(into)
        field_oks: list[str] = []
        for n, expr in out.fields.items():
            fs = field_sql(kind.field(n), quote_ident(texts[(expr, needs_trim(kind.field(n)))]))
            if alias[(i, n)] not in done:
                done.add(alias[(i, n)])
                typed.append(f"{fs.value} AS {quote_ident(alias[(i, n)])}")
            if fs.ok not in field_oks:
                field_oks.append(fs.ok)
        oks.append(f"(NOT {into} OR ({' AND '.join(field_oks) or 'true'}))")
    typed.append(f"({' AND '.join(oks) or 'true'}) AS __ok")
    return (
        f"CREATE OR REPLACE TABLE {table} AS WITH a AS (SELECT {', '.join(raw)} FROM src), "
        f"b AS (SELECT {', '.join(text)} FROM a) SELECT {', '.join(typed)} FROM b"
    )


def _run_checks(con: duckdb.DuckDBPyConnection, connector: Connector, staged: Staged) -> None:
    """Run ``compile_checks``; for self-describing rows (JSON) a key no row has is a column of nulls."""
    for _ in range(sum(len(o.fields) for o in connector.outputs) + 1):
        try:
            con.execute(compile_checks(connector))
            return
        except duckdb.BinderException as exc:
            missing = re.search(r'column "([^"]+)" not found', str(exc))
            if missing is None:
                raise ConnectorError(
                    f"connector {connector.name}: {exc}", remedy="fix the SQL in `outputs`"
                ) from None
            if not staged.sparse:
                # The unit lacks a column the connector maps: the file is wrong, not the connector.
                raise AcquireError(
                    f"the unit has no column {missing.group(1)!r} needed by the connector's outputs "
                    f"(its columns are: {', '.join(staged.columns)})",
                    remedy="send the file with the expected header, or fix `outputs` in the connector",
                ) from None
            con.execute(f"ALTER TABLE src ADD COLUMN {quote_ident(missing.group(1))} VARCHAR")
        except duckdb.Error as exc:
            raise ConnectorError(
                f"connector {connector.name}: the outputs cannot be computed: {exc}",
                remedy=f"fix `outputs` in the connector; source columns are: {', '.join(staged.columns)}",
            ) from None


def _decide_suspects(
    con: duckdb.DuckDBPyConnection, connector: Connector, lists: Any, bad: dict[int, list[Problem]]
) -> pa.Table | None:
    """Let the model decide the rows the fast path was not certain of.

    Adds rejected rows to ``bad``; returns the accepted ones as a table shaped like ``m`` (typed by
    the model), or None when there are none.
    """
    outputs = _kinds(connector)
    cols = ["s.rowid AS __row"]
    for i, out, _ in outputs:
        cols.append(f"coalesce(({out.where}), false) AS __in{i}" if out.where else f"true AS __in{i}")
        cols += [f"({expr}) AS {_col('r', i, n)}" for n, expr in out.fields.items()]
    suspects = con.sql(
        f"SELECT {', '.join(cols)} FROM src AS s SEMI JOIN (SELECT __row FROM m WHERE NOT __ok) AS q "
        "ON s.rowid = q.__row ORDER BY 1"
    ).to_arrow_table()
    if not suspects.num_rows:
        return None
    rows = suspects.column("__row").to_pylist()
    accepted: list[tuple[int, Output, pa.Table, pa.Array]] = []
    for i, out, kind in outputs:
        applies = pc.fill_null(suspects.column(f"__in{i}"), False)
        index = pc.indices_nonzero(applies)
        sub = pa.table({n: suspects.column(f"r{i}_{n}").take(index) for n in out.fields})
        rejected, values = decide_table(kind, sub, lists)
        for k, probs in rejected.items():
            bad.setdefault(rows[index[k].as_py()], []).extend(probs)
        accepted.append((i, out, values, index))
    keep = [k for k, r in enumerate(rows) if r not in bad]
    if not keep:
        return None
    *_, alias = value_columns(connector)
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


def map_staged(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    *,
    batch_id: str,
    ingested_at: datetime,
    lists: Any,
    target: Callable[[str], Target],
) -> Mapped:
    """Validate every output over ``src``; quarantine bad rows once; write each kind's valid rows
    (with provenance) as one Parquet file into ``target(kind).folder``, not yet committed."""
    for name, table in code_tables(lists).items():
        con.register(name, table)
    # Staging kept the source order (rowid = row ordinal); from here rows carry their ordinal.
    con.execute("SET preserve_insertion_order = false")
    bad: dict[int, list[Problem]] = {row: [(r.field, r.reason)] for row, r in staged.rejected_rows.items()}
    _run_checks(con, connector, staged)
    fixed = _decide_suspects(con, connector, lists, bad)
    mapped = Mapped(received=staged.received)
    mapped.rejects = list(staged.rejects)
    if bad:
        con.register("bad_rows", pa.table({"__row": pa.array(sorted(bad), pa.int64())}))
        mapped.rejects += _row_rejects(con, staged, bad)
    mapped.stored = staged.rows - len(bad)
    con.execute("DROP TABLE src")  # free the source rows before writing
    vals = "SELECT * FROM m WHERE __ok"
    if staged.rejected_rows:
        vals += " AND __row NOT IN (SELECT __row FROM bad_rows)"
    if fixed is not None:
        con.register("fixed_rows", fixed)
        vals = f"{vals} UNION ALL BY NAME SELECT * FROM fixed_rows"
    outputs = {out.kind: (i, out) for i, out, _ in _kinds(connector)}
    for i, out, kind in _kinds(connector):
        goal = target(kind.name)
        # One folder per write (batch id first): DuckDB writes one file per thread, in parallel.
        folder = goal.folder / f"{batch_id}-{uuid.uuid4().hex[:12]}"
        select = _output_select(connector, kind, i, out, outputs, staged, batch_id, ingested_at)
        ids = ", ".join(f"{quote_ident(c)}: {goal.field_ids[c]}" for c in _columns(kind))
        written = con.execute(
            f"COPY (SELECT {select} FROM ({vals}) AS o WHERE __in{i}) TO {sql_str(str(folder))} "
            f"(FORMAT parquet, COMPRESSION snappy, PARQUET_VERSION V2, PER_THREAD_OUTPUT true, "
            f"FILENAME_PATTERN {sql_str(batch_id + '-{i}')}, FIELD_IDS {{{ids}}})"
        ).fetchall()
        count = int(written[0][0]) if written else 0
        if count:
            files = sorted(str(p) for p in folder.glob("*.parquet"))
            mapped.files.setdefault(kind.name, []).extend(files)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        mapped.written[kind.name] = mapped.written.get(kind.name, 0) + count
    con.execute("DROP TABLE m")
    return mapped


def _columns(kind: RecordKind) -> list[str]:
    return [f.name for f in kind.arrow_schema()]


def _output_select(
    connector: Connector,
    kind: RecordKind,
    i: int,
    out: Output,
    outputs: dict[str, tuple[int, Output]],
    staged: Staged,
    batch_id: str,
    ingested_at: datetime,
) -> str:
    """Every column of the kind's schema, in order: provenance, parent link, fields (NULL if unmapped)."""
    source = connector.source
    *_, alias = value_columns(connector)

    def v(j: int, name: str) -> str:
        return quote_ident(alias[(j, name)])

    keys = [key_text_sql(kind.field(k), v(i, k)) for k in kind.key]
    values = {
        "record_id": record_id_sql(kind.name, source, keys),
        "source": sql_str(source),
        "batch_id": sql_str(batch_id),
        "locator": staged.locator_sql("o.__row"),
        "ingested_at": f"{sql_str(ingested_at.isoformat())}::TIMESTAMPTZ",
    }
    if kind.parent:
        values[PARENT_COLUMN[0]] = _parent_sql(kind, i, out, outputs, source, v)
    for f in kind.fields:
        values[f.name] = v(i, f.name) if f.name in out.fields else f"NULL::{SQL_TYPES[f.type]}"
    assert set(PROVENANCE_NAMES) <= set(values)
    return ", ".join(f"{values[c]} AS {quote_ident(c)}" for c in _columns(kind))


def _parent_sql(
    kind: RecordKind,
    i: int,
    out: Output,
    outputs: dict[str, tuple[int, Output]],
    source: str,
    v: Callable[[int, str], str],
) -> str:
    parent = get_kind(kind.parent or "")
    if parent.name in outputs:  # the parent record made from the same source row
        j, _ = outputs[parent.name]
        return record_id_sql(
            parent.name, source, [key_text_sql(parent.field(k), v(j, k)) for k in parent.key]
        )
    keys = []
    for k in parent.key:  # the parent's key as this kind names it: declaration_id, declaration_version
        name = k if k in out.fields else f"{parent.name}_{k}"
        if name not in out.fields:
            return "NULL::VARCHAR"
        keys.append(key_text_sql(parent.field(k), v(i, name)))
    return record_id_sql(parent.name, source, keys)


def _row_rejects(
    con: duckdb.DuckDBPyConnection, staged: Staged, bad: dict[int, list[Problem]]
) -> list[Rejected]:
    """One quarantine entry per bad source row, with its locator and the row as source text."""
    if staged.raw_sql:
        raw = staged.raw_sql()
    else:
        raw = (
            "to_json(struct_pack("
            + ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in staged.columns)
            + "))"
        )
    found = con.execute(
        f"SELECT s.rowid, {staged.locator_sql('s.rowid')}, {raw} FROM src AS s "
        "SEMI JOIN bad_rows AS b ON s.rowid = b.__row ORDER BY 1"
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
