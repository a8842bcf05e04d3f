"""How the dry-run's lake path reads one kind's subject rows: tables, dates, keys and columns.

A row may take fields from its parent record, as the engine's scored row does (features.yaml
``from_parent``): a consignment is handled at its manifest's ``customs_office`` (decision 0108),
travels by its ``mode_of_transport`` and is dated by its arrival, departure or issue (decision
0116). The dry-run joins the parent when the rule names such a field or the kind is dated by one,
by ``parent_record_id`` as batch scoring and the SQL row scope do (decision 0113); every other kind
(every declaration rule) reads exactly what it read before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciti.lake import Lake
from sciti.model import get_kind
from sciti.model.sql import SQL_TYPES
from sciti.risk.features.catalog import parent_fields
from sciti.risk.features.prepare import sql_first_date
from sciti.risk.features.spec import date_fields
from sciti.risk.rules.protected import DryRunAccess
from sciti.risk.rules.sql import quote_ident


@dataclass(frozen=True)
class Subject:
    """How to read one kind's subject rows from the lake with canonical columns."""

    kind: str
    from_sql: str  # FROM clause; item columns under alias i (declarations), else t
    date_sql: str  # the date a record is assessed for
    key_column: str  # business key inspection results name as target_id
    record_id_sql: str  # the row's record id (the goods item's for declarations)
    sample_id_sql: str  # the id a sample is shown by: the subject's record id (the declaration's)


def own_date_sql(kind: str, parent: bool = False) -> str:
    """The date a lake row of ``kind`` is assessed for, as ``features.records_sql`` gives it: its
    date fields (``DATE_COLUMNS``; those taken from the parent under alias ``par``, only when
    ``parent``), else the day SCITI stored it."""
    taken = {f.name for f in parent_fields(kind)}
    dated = [
        (f"par.{quote_ident(c)}" if c in taken else f"t.{quote_ident(c)}", ts)
        for c, ts in date_fields(kind)
        if parent or c not in taken
    ]
    return sql_first_date([*dated, ("t.ingested_at", True)])


def dated_by_parent(kind: str) -> bool:
    """Whether ``kind``'s date comes from its parent record (a consignment's from its manifest)."""
    taken = {f.name for f in parent_fields(kind)}
    return any(c in taken for c, _ in date_fields(kind))


SUBJECT_SQL: dict[str, Subject] = {
    "declaration": Subject(
        "declaration",
        "std.declarations d JOIN std.declaration_items i "
        "ON i.declaration_id = d.declaration_id AND i.declaration_version = d.version",
        "COALESCE(d.acceptance_date, CAST(d.issue_datetime AS DATE))",
        "declaration_id",
        "i.record_id",
        "d.record_id",
    ),
    # Dated by its own table alone: the parent's dates are added by ``subject_source``.
    "consignment": Subject(
        "consignment",
        "std.consignments t",
        own_date_sql("consignment"),
        "transport_document",
        "t.record_id",
        "t.record_id",
    ),
    "road_cargo_info": Subject(
        "road_cargo_info",
        "std.road_cargo_info t",
        own_date_sql("road_cargo_info"),
        "reference",
        "t.record_id",
        "t.record_id",
    ),
    "passenger": Subject(
        "passenger", "std.passengers t", own_date_sql("passenger"), "record_ref", "t.record_id", "t.record_id"
    ),
    "currency_declaration": Subject(
        "currency_declaration",
        "std.currency_declarations t",
        own_date_sql("currency_declaration"),
        "declaration_number",
        "t.record_id",
        "t.record_id",
    ),
}


def canonical_column(kind: str, name: str) -> str:
    """The qualified SQL column of a canonical field (item wins over header for declarations)."""
    if kind == "declaration":
        item = set(get_kind("declaration_item").field_names) | {"record_id"}
        return f"i.{quote_ident(name)}" if name in item else f"d.{quote_ident(name)}"
    return f"t.{quote_ident(name)}"


@dataclass(frozen=True)
class SubjectSource:
    """Where a dry-run reads its rows from: the FROM clause, name -> SQL of each column, the lake
    tables read besides the kind's own (the parent's, when joined), each row's date, and the FROM
    clause the window's records are counted over (a declaration's header table alone)."""

    from_sql: str
    columns: dict[str, str]
    also_reads: frozenset[str]
    date_sql: str
    totals_sql: str


def subject_source(kind: str, names: set[str], lake: Lake, access: DryRunAccess | None) -> SubjectSource:
    """The rows for a rule naming ``names``: the kind's own table, joined to its parent's when a
    name is a field the row takes from the parent or the kind is dated by the parent's fields.
    Those fields are NULL (as in batch scoring) when the parent's table does not exist yet, or this
    caller may not read it; a row is then dated by the day SCITI stored it."""
    subject = SUBJECT_SQL[kind]
    taken = {f.name: f for f in parent_fields(kind) if f.name in names}
    columns = {n: canonical_column(kind, n) for n in names if n not in taken}
    header = subject.from_sql.split(" JOIN ")[0]
    if not taken and not dated_by_parent(kind):
        return SubjectSource(subject.from_sql, columns, frozenset(), subject.date_sql, header)
    parent = get_kind(get_kind(kind).parent or "").ident
    if not lake.exists(parent) or (access is not None and not access.policy.can_read(parent)):
        columns |= {n: f"CAST(NULL AS {SQL_TYPES[f.type]})" for n, f in taken.items()}
        return SubjectSource(subject.from_sql, columns, frozenset(), subject.date_sql, header)
    # By the link the row scope follows (not manifest_id, which two carriers may share).
    joined = f"{subject.from_sql} LEFT JOIN {parent} par ON par.record_id = t.parent_record_id"
    columns |= {n: f"par.{quote_ident(n)}" for n in taken}
    return SubjectSource(joined, columns, frozenset({parent}), own_date_sql(kind, parent=True), joined)


__all__ = [
    "SUBJECT_SQL",
    "Subject",
    "SubjectSource",
    "canonical_column",
    "dated_by_parent",
    "own_date_sql",
    "subject_source",
]
