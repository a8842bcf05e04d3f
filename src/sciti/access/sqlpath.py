"""A person's SQL over the lake, through the policy: vetted, ruled views, then audited.

``open_query`` is what ``sciti sql``, ``POST /api/v1/sql``, its export and the unmask endpoint call:
it vets the statement (:mod:`sciti.access.sqlguard`), refuses tables the caller may not read (with
the same message as for tables that do not exist: need-to-know includes not knowing), and runs it
on views that apply the caller's row filters and masks. ``record_query`` writes the audit entry.

Every query is bounded (decision 0098, :class:`QueryLimits`): a time limit, DuckDB memory and
threads, a row cap for exports and a byte cap for answers; and every query is audited whatever
its outcome: ok, denied, refused (over a cap), timed out, stopped or failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

from sciti.access.accounts import Principal
from sciti.access.audit import audit
from sciti.access.errors import PermissionDenied
from sciti.access.policy import DataPolicy
from sciti.access.sqlguard import SqlRefused, vet
from sciti.errors import InvalidInput, SCITIError
from sciti.lake import Lake
from sciti.lake.query import Limits, UnknownTables, open_reader
from sciti.lake.query import statement_name as _statement_name
from sciti.lake.running import QueryStopped, QueryTimeout, RunningQuery, StopSignal
from sciti.lake.views import quote_ident, quote_literal
from sciti.model import PROVENANCE_NAMES
from sciti.ops import session_scope
from sciti.settings import Settings

MAX_AUDITED_SQL = 4000  # characters of the statement kept in the audit entry
# Quoted text in a database error is usually a value of the data ("Could not convert string 'X'").
QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


class TableNotReadable(PermissionDenied):
    code = "table_not_readable"
    http_status = 403


class AnswerTooLarge(SCITIError):
    """A query's answer or an export is over its cap (audited as refused)."""

    code = "answer_too_large"
    http_status = 422


@dataclass(frozen=True)
class QueryLimits:
    """How much one query on the SQL path may take (settings ``sql_*``, decision 0098).

    ``seconds``: wall time until the caller has read the result; ``max_rows``: rows an export may
    hold (more are refused); ``max_bytes``: Arrow bytes of the rows a query returns (``first_rows``);
    ``memory``/``threads``: DuckDB's, per query. None: unbounded.
    """

    seconds: float | None = None
    max_rows: int | None = None
    max_bytes: int | None = None
    memory: str | None = None
    threads: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, export: bool = False) -> QueryLimits:
        threads = settings.sql_threads or max(1, (os.cpu_count() or 2) // 2)
        return cls(
            seconds=settings.sql_export_timeout_seconds if export else settings.sql_timeout_seconds,
            max_rows=settings.sql_export_max_rows if export else None,
            max_bytes=settings.sql_max_answer_bytes,
            memory="".join(settings.sql_memory_limit.split()),
            threads=threads,
        )

    @classmethod
    def defaults(cls, *, export: bool = False) -> QueryLimits:
        """The limits of the settings' defaults, for callers that do not pass their settings."""
        return cls.from_settings(Settings.model_construct(), export=export)

    @property
    def lake(self) -> Limits:
        return Limits(seconds=self.seconds, memory=self.memory, threads=self.threads)


@dataclass
class PolicyQuery:
    """A running query and what the audit entry needs to say about it."""

    reader: pa.RecordBatchReader
    sql: str
    tables: list[str]
    masked: dict[str, list[str]] = field(default_factory=dict)
    unmasked: dict[str, list[str]] = field(default_factory=dict)
    purpose: str | None = None
    rows: int | None = None  # set by the caller once it has read the result
    running: RunningQuery | None = None
    limits: QueryLimits = field(default_factory=QueryLimits)

    @property
    def touches_personal(self) -> bool:
        return bool(self.masked or self.unmasked)

    def first_rows(self, limit: int) -> tuple[pa.Schema, list[pa.RecordBatch], bool]:
        """At most ``limit`` rows (and whether there were more), streamed, then the reader closed.

        The rows kept may hold at most ``limits.max_bytes`` of Arrow data (AnswerTooLarge): a row
        limit alone does not bound an answer (one row of a list can hold millions of values).
        Sets ``rows``.
        """
        batches: list[pa.RecordBatch] = []
        seen, size, truncated = 0, 0, False
        try:
            for batch in self.reader:
                if seen + batch.num_rows > limit:
                    batch, truncated = batch.slice(0, limit - seen), True
                size += batch.nbytes
                if self.limits.max_bytes is not None and size > self.limits.max_bytes:
                    raise AnswerTooLarge(
                        f"the answer is larger than {_size(self.limits.max_bytes)} "
                        f"(over {_size(size)} after {seen + batch.num_rows} rows)",
                        remedy="select fewer columns or rows (a lower limit, no large lists or texts), "
                        "or export the result (POST /api/v1/sql/export, sciti sql --output)",
                        details={"limit_bytes": self.limits.max_bytes},
                    )
                batches.append(batch)
                seen += batch.num_rows
                if truncated:
                    break
        finally:
            self.reader.close()
            if self.running is not None:
                self.running.close()
        self.rows = seen
        return self.reader.schema, batches, truncated


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def _not_readable(principal: Principal, table: str) -> TableNotReadable:
    """One answer for a table that does not exist and one the caller may not read (need-to-know)."""
    return TableNotReadable(
        f"table {table} does not exist or your roles ({', '.join(principal.roles)}) may not read it",
        remedy="list the tables you may read with `sciti tables`; ask for a role if your duty needs it",
        details={"table": table},
    )


def _refuse_other_statements(sql: str) -> None:
    """Refuse a statement that is not a query, naming it as written (INSTALL, not LOAD).

    sqlguard.vet refuses these too, but names DuckDB's statement type.
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error:
        return  # vet says why it does not parse
    if len(statements) == 1 and statements[0].type != duckdb.StatementType.SELECT:
        raise SqlRefused(
            f"only queries may run (one SELECT), not {_statement_name(statements[0])}",
            remedy="query lake tables as zone.name (e.g. std.declarations) in one SELECT; "
            "see docs/security-access.md",
        )


def plan_tables(principal: Principal, sql: str, policy: DataPolicy) -> set[str]:
    """The lake tables ``sql`` reads, all readable by ``principal`` (else TableNotReadable)."""
    _refuse_other_statements(sql)
    tables = vet(sql)
    hidden = sorted(t for t in tables if not policy.can_read(t))
    if hidden:
        raise _not_readable(principal, hidden[0])
    return tables


def open_query(
    lake: Lake,
    principal: Principal,
    sql: str,
    *,
    as_of: Any = None,
    unmask: bool = False,
    purpose: str | None = None,
    batch_rows: int = 65_536,
    limits: QueryLimits | None = None,
    stop: StopSignal | None = None,
) -> PolicyQuery:
    limits = limits or QueryLimits()
    policy = DataPolicy(principal, unmask=unmask, purpose=purpose)
    tables = plan_tables(principal, sql, policy)
    rules = policy.rules(tables)
    try:
        running = open_reader(
            lake,
            sql,
            as_of=as_of,
            tables=set(rules),
            rules=rules,
            batch_rows=batch_rows,
            limits=limits.lake,
            required=tables,
            stop=stop,
        )
    except UnknownTables as exc:
        raise _not_readable(principal, exc.details["tables"][0]) from None
    masked = {t: f for t in sorted(tables) if (f := policy.masked_fields(t))}
    unmasked = {t: f for t in sorted(tables) if unmask and (f := policy.personal_fields(t))}
    reader = running.reader
    if limits.max_rows is not None:
        reader = _capped(reader, limits.max_rows)
    return PolicyQuery(
        reader, sql, sorted(tables), masked, unmasked, policy.purpose, running=running, limits=limits
    )


def _capped(reader: pa.RecordBatchReader, max_rows: int) -> pa.RecordBatchReader:
    """The same batches, refusing (AnswerTooLarge) once there are more than ``max_rows`` rows."""

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            if rows > max_rows:
                raise AnswerTooLarge(
                    f"the export has more than {max_rows:,} rows, the most one export may hold",
                    remedy="narrow it (a WHERE on a date or office) and export it in parts, or ask an "
                    "administrator for a higher limit (sql_export_max_rows)",
                    details={"limit_rows": max_rows},
                )
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def record_query(
    session: Session,
    principal: Principal,
    *,
    action: str,
    sql: str,
    source: str,
    rows: int | None = None,
    result: PolicyQuery | None = None,
    purpose: str | None = None,
    outcome: str = "ok",
    error: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """One audit entry for a query or export: the SQL, tables touched, row count and purpose."""
    details: dict[str, Any] = {"sql": sql[:MAX_AUDITED_SQL]}
    if result is not None:
        details["tables"] = result.tables
        if result.masked:
            details["personal_masked"] = result.masked
        if result.unmasked:
            details["personal_unmasked"] = result.unmasked
        purpose = result.purpose or purpose
    if rows is not None:
        details["rows"] = rows
    if error:
        details["error"] = audited_error(error)
    details.update(extra or {})
    audit(
        session,
        actor=principal.username,
        action=action,
        target=",".join(f"table:{t}" for t in (result.tables if result else [])),
        purpose=purpose,
        source=source,
        outcome=outcome,
        details=details,
    )


def audited_error(message: str) -> str:
    """The error as the audit keeps it: quoted text left out. A failed query's error can quote a
    value of the data, in clear when the query unmasked it; the audit trail is read by people who
    may not see personal data and is never deleted, so it must not keep one."""
    return QUOTED.sub("'…'", message)[:500]


def unmask_sql(principal: Principal, table: str, record_id: str, fields: list[str]) -> str:
    """The SELECT that shows ``fields`` of one record (checked against the table's record kind)."""
    policy = DataPolicy(principal)
    ident = table.strip().lower()
    kind = policy.kind_of(ident)
    if kind is None or not policy.can_read(ident):
        raise TableNotReadable(
            f"table {table} does not exist, holds no personal fields, or your roles may not read it",
            remedy="unmask works on record kinds in std, e.g. std.passengers",
        )
    known = set(kind.field_names) | set(PROVENANCE_NAMES)
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise InvalidInput(
            f"{table} has no field(s) {', '.join(unknown)}",
            remedy=f"use fields of {kind.name}: see DESCRIBE {ident}",
        )
    columns = ", ".join(quote_ident(f) for f in dict.fromkeys(fields))
    return f"SELECT {columns} FROM {ident} WHERE record_id = {quote_literal(record_id)} LIMIT 1"


@contextmanager
def audited_query(
    db_url: str,
    lake: Lake,
    principal: Principal,
    sql: str,
    *,
    action: str,
    source: str,
    as_of: Any = None,
    unmask: bool = False,
    purpose: str | None = None,
    extra: dict[str, Any] | None = None,
    limits: QueryLimits | None = None,
    stop: StopSignal | None = None,
) -> Iterator[PolicyQuery]:
    """Open the query, let the caller read it (and set ``rows``), then audit it whatever the outcome.

    One entry per query, written when it ends, in its own transaction, before any error goes on:
    ``ok``, ``denied`` (the policy), ``refused`` (over a row or byte cap), ``timed_out``,
    ``stopped`` (server shutdown) or ``failed`` (anything else, also an error that is not SCITI's).
    ``limits``: default :meth:`QueryLimits.defaults` (for ``export``, the export's limits); pass
    ``QueryLimits.from_settings(settings, ...)`` to apply the instance's settings. ``stop``: lets
    the caller stop the query from another thread (its client left: ``stopped``, with
    ``stopped_by`` in the details, decision 0109).
    """
    if unmask and action == "query":
        action = "unmask"
    if limits is None:
        limits = QueryLimits.defaults(export=action == "export")
    result: PolicyQuery | None = None
    outcome, error = "failed", None
    why: dict[str, str] = {}  # what stopped a stopped query
    try:
        result = open_query(
            lake, principal, sql, as_of=as_of, unmask=unmask, purpose=purpose, limits=limits, stop=stop
        )
        yield result
        outcome = "ok"
    except SCITIError as exc:
        outcome, error = _outcome_of(exc), exc.message
        if isinstance(exc, QueryStopped) and exc.details.get("stopped_by"):
            why = {"stopped_by": exc.details["stopped_by"]}  # shutdown, or the client left
        raise
    except BaseException as exc:  # a bug, a lost client, Ctrl-C: still one entry for the query
        error = type(exc).__name__
        raise
    finally:
        if result is not None and result.running is not None:
            result.running.close()
        with session_scope(db_url) as session:
            record_query(
                session,
                principal,
                action=action,
                sql=sql,
                source=source,
                rows=result.rows if result else None,
                result=result,
                purpose=purpose,
                outcome=outcome,
                error=error,
                extra={**(extra or {}), **({"unmask": True} if unmask else {}), **why},
            )


def _outcome_of(exc: SCITIError) -> str:
    if isinstance(exc, QueryTimeout):
        return "timed_out"
    if isinstance(exc, QueryStopped):
        return "stopped"
    if isinstance(exc, AnswerTooLarge):
        return "refused"
    if isinstance(exc, PermissionDenied):
        return "denied"
    return "failed"


def counted(reader: pa.RecordBatchReader, on_done: Callable[[int], None]) -> pa.RecordBatchReader:
    """The same batches; ``on_done(rows)`` runs once the last batch has been read."""

    def batches():
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            yield batch
        on_done(rows)

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


__all__ = [
    "AnswerTooLarge",
    "PolicyQuery",
    "QueryLimits",
    "TableNotReadable",
    "audited_query",
    "counted",
    "open_query",
    "plan_tables",
    "record_query",
    "unmask_sql",
]
