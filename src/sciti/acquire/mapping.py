"""Table-style mapping: staged source rows -> typed canonical rows per record kind, in DuckDB SQL.

Each connector output is compiled to one SQL statement over the staged table ``src``: the
connector's expressions, then a cast to the kind's types (a value that does not cast is a problem
naming the field and the value, never a silent NULL), then the deterministic record id and the
parent link. The model's vectorised validator then checks mandatory fields, code lists and
identifiers. A source row rejected by any output is quarantined once and stored by none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from sciti.acquire.connector import Connector, Output
from sciti.acquire.errors import AcquireError, ConnectorError
from sciti.acquire.formats.tabular import Staged, quote_ident, sql_str
from sciti.acquire.items import Rejected
from sciti.acquire.validation import Problem, check_table, describe
from sciti.model import PARENT_COLUMN, FieldDef, RecordKind, get_kind

SQL_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "decimal": "DECIMAL(18,4)",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}
TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "decimal": "a decimal number",
    "bool": "true/false",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a date and time",
}
VALIDATE_CHUNK = 262_144


@dataclass
class Mapped:
    """What mapping one staged unit produced."""

    tables: dict[str, pa.Table] = field(default_factory=dict)  # kind -> rows with provenance
    written: dict[str, int] = field(default_factory=dict)  # kind -> rows already handed to a sink
    rejects: list[Rejected] = field(default_factory=list)
    received: int = 0
    stored: int = 0


def _text(expr: str) -> str:
    return f"NULLIF(trim(CAST(({expr}) AS VARCHAR)), '')"


def typed(f: FieldDef, expr: str) -> str:
    """SQL turning a source expression into the field's type (NULL when it does not cast)."""
    if f.type == "string":
        return _text(expr)
    return f"TRY_CAST({_text(expr)} AS {SQL_TYPES[f.type]})"


def record_id_sql(kind: RecordKind, source: str, key_exprs: list[str]) -> str:
    """Same formula as ``sciti.model.make_record_id``: md5 of kind, source, key parts joined by chr(31)."""
    parts = [sql_str(kind.name), sql_str(source)] + [
        f"coalesce(CAST(({e}) AS VARCHAR), '')" for e in key_exprs
    ]
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"


def _key_exprs(kind: RecordKind, out: Output) -> list[str]:
    exprs = []
    for k in kind.key:
        if k not in out.fields:
            raise ConnectorError(
                f"output {kind.name} does not map key field {k!r}",
                remedy=f"map every key field: {', '.join(kind.key)}",
            )
        exprs.append(typed(kind.field(k), out.fields[k]))
    return exprs


def _parent_sql(kind: RecordKind, out: Output, outputs: dict[str, Output], source: str) -> str:
    parent = get_kind(kind.parent or "")
    if parent.name in outputs:  # the parent record made from the same source row
        return record_id_sql(parent, source, _key_exprs(parent, outputs[parent.name]))
    exprs = []
    for k in parent.key:  # the parent's key as this kind names it: declaration_id, declaration_version
        name = k if k in out.fields else f"{parent.name}_{k}"
        if name not in out.fields:
            return "NULL"
        exprs.append(typed(parent.field(k), out.fields[name]))
    return record_id_sql(parent, source, exprs)


def compile_output(connector: Connector, out: Output, table: str) -> str:
    """CREATE TABLE ``table`` with __row, typed fields, __problems, record_id and parent id."""
    kind = get_kind(out.kind)
    outputs = {o.kind: o for o in connector.outputs}
    names = list(out.fields)
    raw = ", ".join(f"({expr}) AS {quote_ident('r_' + n)}" for n, expr in out.fields.items())
    cast = ", ".join(f"{typed(kind.field(n), quote_ident('r_' + n))} AS {quote_ident(n)}" for n in names)
    checks = []
    for n in names:
        f = kind.field(n)
        if f.type != "string":
            r = quote_ident("r_" + n)
            checks.append(
                f"CASE WHEN {_text(r)} IS NOT NULL AND {quote_ident(n)} IS NULL THEN "
                f"{sql_str(n + ': ')} || {_text(r)} || {sql_str(' is not ' + TYPE_WORDS[f.type])} END"
            )
    problems = (
        f"list_filter([{', '.join(checks)}]::VARCHAR[], lambda x: x IS NOT NULL)"
        if checks
        else "[]::VARCHAR[]"
    )
    ident = record_id_sql(kind, connector.source, _key_exprs(kind, out))
    parent = f", {_parent_sql(kind, out, outputs, connector.source)} AS __parent" if kind.parent else ""
    where = f" WHERE {out.where}" if out.where else ""
    return (
        f"CREATE OR REPLACE TABLE {table} AS WITH m AS (SELECT rowid AS __row, {raw} FROM src{where}), "
        f"t AS (SELECT *, {cast} FROM m) "
        f"SELECT __row, {', '.join(quote_ident(n) for n in names)}, {problems} AS __problems, "
        f"{ident} AS __record_id{parent} FROM t"
    )


def _create_output(
    con: duckdb.DuckDBPyConnection, connector: Connector, out: Output, table: str, staged: Staged
) -> None:
    """Run one output; for self-describing rows (JSON) a key no row has is a column of nulls."""
    for _ in range(len(out.fields) + 1):
        try:
            con.execute(compile_output(connector, out, table))
            return
        except duckdb.BinderException as exc:
            missing = re.search(r'column "([^"]+)" not found', str(exc))
            if not staged.sparse or missing is None:
                raise
            con.execute(f"ALTER TABLE src ADD COLUMN {quote_ident(missing.group(1))} VARCHAR")


def _checked_fields(kind: RecordKind, out: Output) -> list[str]:
    """Fields the model must still check after the SQL cast: mandatory, coded, identifiers, lengths.

    Other typed columns passed the cast already; handing them over again would only cost time.
    """
    return [
        n for n in out.fields if (f := kind.field(n)).required or f.codelist or f.identifier or f.max_length
    ]


def map_staged(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    *,
    batch_id: str,
    ingested_at: datetime,
    lists: Any,
    sink: Callable[[str, pa.Table], None] | None = None,
) -> Mapped:
    """Run every output over ``src``; quarantine bad rows once; return provenance-complete tables.

    With ``sink``, each kind's table is handed over as soon as it is made and then dropped, so a
    big unit never holds all its kinds in memory at once.
    """
    bad: dict[int, list[Problem]] = {row: [(r.field, r.reason)] for row, r in staged.rejected_rows.items()}
    tables = []
    for i, out in enumerate(connector.outputs):
        kind = get_kind(out.kind)
        table = f"out_{i}"
        try:
            _create_output(con, connector, out, table, staged)
        except duckdb.BinderException as exc:
            missing = re.search(r'column "([^"]+)" not found', str(exc))
            if missing is None:
                raise ConnectorError(
                    f"connector {connector.name}: output {out.kind}: {exc}", remedy="fix the SQL in `outputs`"
                ) from None
            # The unit lacks a column the connector maps: the file is wrong, not the connector.
            raise AcquireError(
                f"the unit has no column {missing.group(1)!r} needed for {out.kind} "
                f"(its columns are: {', '.join(staged.columns)})",
                remedy="send the file with the expected header, or fix `outputs` in the connector",
            ) from None
        except duckdb.Error as exc:
            raise ConnectorError(
                f"connector {connector.name}: output {out.kind} cannot be computed: {exc}",
                remedy=f"fix `outputs` in the connector; source columns are: {', '.join(staged.columns)}",
            ) from None
        tables.append((kind, out, table))
        for row, probs in con.execute(
            f"SELECT __row, __problems FROM {table} WHERE len(__problems) > 0"
        ).fetchall():
            bad.setdefault(row, []).extend((p.split(":", 1)[0], p) for p in probs)
        checked = _checked_fields(kind, out)
        names = "".join(f", {quote_ident(n)}" for n in checked)
        reader = con.sql(f"SELECT __row{names} FROM {table} WHERE len(__problems) = 0").to_arrow_reader(
            VALIDATE_CHUNK
        )
        for batch in reader:
            chunk = pa.Table.from_batches([batch])
            rows = chunk.column("__row").to_pylist()
            for index, probs in check_table(kind, chunk.drop_columns(["__row"]), lists).items():
                bad.setdefault(rows[index], []).extend(probs)
    mapped = Mapped(received=staged.received)
    mapped.rejects = list(staged.rejects)
    if bad:
        con.execute("CREATE OR REPLACE TEMP TABLE bad (__row BIGINT)")
        con.register("bad_rows", pa.table({"__row": pa.array(sorted(bad), pa.int64())}))
        con.execute("INSERT INTO bad SELECT __row FROM bad_rows")
        con.unregister("bad_rows")
        mapped.rejects += _row_rejects(con, staged, bad)
    mapped.stored = staged.rows - len(bad)
    # The source rows are no longer needed: free them before the results are materialised as Arrow.
    con.execute("DROP TABLE src")
    anti = " WHERE __row NOT IN (SELECT __row FROM bad)" if bad else ""
    stamp = sql_str(ingested_at.isoformat()) + "::TIMESTAMPTZ"
    for kind, out, table in tables:
        parent = f", __parent AS {PARENT_COLUMN[0]}" if kind.parent else ""
        fields = ", ".join(quote_ident(n) for n in out.fields)
        sql = (
            f"SELECT __record_id AS record_id, {sql_str(connector.source)} AS source, "
            f"{sql_str(batch_id)} AS batch_id, "
            f"{staged.locator_sql('o.__row')} AS locator, {stamp} AS ingested_at{parent}, {fields} "
            f"FROM {table} AS o{anti}"
        )
        result = con.sql(sql).to_arrow_table()
        con.execute(f"DROP TABLE {table}")
        if sink is None:
            mapped.tables[kind.name] = result
        else:
            sink(kind.name, result)
            mapped.written[kind.name] = result.num_rows
            del result
    return mapped


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
        "WHERE s.rowid IN (SELECT __row FROM bad)"
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
