"""A person's SQL over the lake, through the policy: vetted, ruled views, then audited.

``open_query`` is what ``sciti sql``, ``POST /api/v1/sql``, its export and the unmask endpoint call:
it vets the statement (:mod:`sciti.access.sqlguard`), refuses tables the caller may not read (with
the same message as for tables that do not exist: need-to-know includes not knowing), and runs it
on views that apply the caller's row filters and masks. ``record_query`` writes the audit entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from sciti.access.accounts import Principal
from sciti.access.audit import audit
from sciti.access.errors import PermissionDenied
from sciti.access.policy import DataPolicy
from sciti.access.sqlguard import vet
from sciti.errors import InvalidInput, SCITIError
from sciti.lake import Lake, query_reader
from sciti.lake.views import quote_ident, quote_literal
from sciti.model import PROVENANCE_NAMES
from sciti.ops import session_scope

MAX_AUDITED_SQL = 4000  # characters of the statement kept in the audit entry
# Quoted text in a database error is usually a value of the data ("Could not convert string 'X'").
QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


class TableNotReadable(PermissionDenied):
    code = "table_not_readable"
    http_status = 403


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

    @property
    def touches_personal(self) -> bool:
        return bool(self.masked or self.unmasked)


def plan_tables(principal: Principal, sql: str, policy: DataPolicy) -> set[str]:
    """The lake tables ``sql`` reads, all readable by ``principal`` (else TableNotReadable)."""
    tables = vet(sql)
    hidden = sorted(t for t in tables if not policy.can_read(t))
    if hidden:
        raise TableNotReadable(
            f"table {hidden[0]} does not exist or your roles ({', '.join(principal.roles)}) may not read it",
            remedy="list the tables you may read with `sciti tables`; ask for a role if your duty needs it",
            details={"table": hidden[0]},
        )
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
) -> PolicyQuery:
    policy = DataPolicy(principal, unmask=unmask, purpose=purpose)
    tables = plan_tables(principal, sql, policy)
    rules = policy.rules(tables)
    reader = query_reader(lake, sql, as_of=as_of, tables=set(rules), rules=rules, batch_rows=batch_rows)
    masked = {t: f for t in sorted(tables) if (f := policy.masked_fields(t))}
    unmasked = {t: f for t in sorted(tables) if unmask and (f := policy.personal_fields(t))}
    return PolicyQuery(reader, sql, sorted(tables), masked, unmasked, policy.purpose)


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
) -> Iterator[PolicyQuery]:
    """Open the query, let the caller read it (and set ``rows``), then audit: done, denied or failed.

    Refused and failed attempts are audited too, in their own transaction, before the error goes on.
    """
    if unmask and action == "query":
        action = "unmask"

    def record(result: PolicyQuery | None, outcome: str, error: str | None = None) -> None:
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
                extra={**(extra or {}), **({"unmask": True} if unmask else {})},
            )

    try:
        result = open_query(lake, principal, sql, as_of=as_of, unmask=unmask, purpose=purpose)
    except SCITIError as exc:
        record(None, "denied" if isinstance(exc, PermissionDenied) else "failed", exc.message)
        raise
    try:
        yield result
    except SCITIError as exc:
        record(result, "failed", exc.message)
        raise
    record(result, "ok")


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
    "PolicyQuery",
    "TableNotReadable",
    "audited_query",
    "counted",
    "open_query",
    "plan_tables",
    "record_query",
    "unmask_sql",
]
