"""Dry-run: what a rule would have hit over the last N days of lake data, before anyone approves it.

One DuckDB statement does the work. A rule over canonical fields only is pushed straight into the
lake query (Iceberg snapshot -> DuckDB view -> filter -> aggregate), so the cost is one scan of
the columns the rule reads (and a consignment's manifest, for the office a scope names:
:mod:`sciti.risk.rules.dryrun_subjects`). A rule that reads derived features runs over the
features the engine scores with, history features as of each record's own date
(:mod:`sciti.risk.rules.derived`).
The window ends at ``until`` or, by default, at the newest record of the kind in the lake, so a
dry-run over a historical data set (e.g. KCS 2020) is meaningful.

The figures count one unit: the subject the ``records`` count is of. For declarations that is the
declaration, so ``hits`` is the declarations with at least one hit goods item, ``hit_rows`` the goods
items hit, and the sample ids are declarations' record ids (those of risk.assessments and the
queue). For the other kinds a record is its own subject and ``hit_rows`` equals ``hits``.

A person's dry-run reads the lake on their behalf: given a :class:`DryRunAccess` it reads the
tables through that caller's views (their office's rows only, personal fields masked unless they
unmasked with a purpose), exactly as the SQL path. Without one (benchmarks, the engine's own
checks) it reads every row, and refuses a rule that names personal or restricted fields: nobody
stands behind such a lookup. The audited entry points are in :mod:`sciti.risk.rules.dryrun_audited`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from sciti.lake import Lake, open_lake, query
from sciti.risk.rules.columns import SCOPE_FIELDS, column_infos, column_types
from sciti.risk.rules.condition import names_in, referenced_types
from sciti.risk.rules.definition import RuleDef, compile_condition, iso_moment
from sciti.risk.rules.derived import dry_run_features, history_features, names_history, needs_features
from sciti.risk.rules.dryrun_notes import dry_run_notes, plural
from sciti.risk.rules.dryrun_subjects import SUBJECT_SQL, canonical_column, subject_source
from sciti.risk.rules.protected import DryRunAccess, ProtectedFieldsRefused, protected_fields, source_tables
from sciti.risk.rules.sql import condition_sql, in_list_sql, quote_ident, quote_text
from sciti.settings import Settings

SAMPLE = 20
MAX_DAYS = 3660  # ten years: the longest window a dry-run looks back over (API and CLI alike)
INSPECTIONS = "std.inspection_results"
# Known fraud: the label when given, else the severity, else a seizure.
FRAUD_SQL = "COALESCE(fraud, fraud_severity > 0, outcome = 'seizure', FALSE)"
NEWEST = "(SELECT max(record_date) FROM t_all)"  # the window ends at the newest record's day
NO_FRAUDS = "(SELECT NULL::VARCHAR AS subject_key, NULL::BOOLEAN AS fraud WHERE FALSE)"


@dataclass
class DryRunResult:
    rule_id: str
    version: int | None
    kind: str
    days: int
    window_from: date | None
    window_to: date | None
    records: int  # records in the window (declarations, not goods items, for declarations)
    hits: int  # records hit, in the unit of ``records`` (declarations with a hit item for declarations)
    hit_subjects: int  # distinct subjects hit (business keys; = hits for declarations)
    inspected_hits: int  # subjects hit that were inspected
    known_frauds: int  # subjects hit with a known fraud among their inspection results
    hits_per_day: list[dict[str, Any]] = field(default_factory=list)
    sample_ids: list[str] = field(default_factory=list)
    path: str = "lake"  # lake (canonical columns pushed down) or features (derived features computed)
    seconds: float = 0.0
    office: str | None = None  # the figures cover only this office's records (the caller's); None: all
    unmasked: list[str] = field(default_factory=list)  # personal fields read in clear (with a purpose)
    in_scope: int = 0  # records in the window the rule's scope keeps (= records without a scope)
    scope_kept: dict[str, int] = field(default_factory=dict)  # scope key -> records that key alone keeps
    valid_from: str | None = None  # the rule's validity period, as written (not applied: see notes)
    valid_to: str | None = None
    notes: list[str] = field(default_factory=list)  # why the figures may not be what one expects
    note_codes: list[dict[str, Any]] = field(default_factory=list)  # each note's code, line for line
    hit_rows: int = 0  # rows the rule hits: goods items for declarations, else = hits
    history_as_of: str | None = None  # "record_date": history features named, as of each record's date

    @property
    def unit(self) -> str:
        """What ``records`` and ``hits`` count, in words (plural)."""
        return plural(self.kind)

    def summary(self) -> str:
        """'240 declarations hit (247 goods items) of 25,001 in the window': one unit throughout."""
        items = f" ({self.hit_rows:,} goods items)" if self.kind == "declaration" else ""
        return f"{self.hits:,} {self.unit} hit{items} of {self.records:,} in the window"

    @property
    def hit_rate(self) -> float | None:
        """Share of the inspected subjects hit that were frauds (None when none were inspected)."""
        return self.known_frauds / self.inspected_hits if self.inspected_hits else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["window_from"] = self.window_from.isoformat() if self.window_from else None
        out["window_to"] = self.window_to.isoformat() if self.window_to else None
        out["hit_rate"] = self.hit_rate
        return out


def _source_tables(kind: str) -> list[str]:
    return source_tables(kind)


def _scope_sql(scope: dict[str, str], count_sql: str, relation: str, window: str) -> tuple[str, str]:
    """A CTE ``s`` counting, per day, the records the whole scope keeps and those each scope key
    alone keeps, and the columns that read it; with no scope, nothing to count (every record is
    in scope) and NULLs."""
    if not scope:
        return "", "CAST(NULL AS BIGINT) AS in_scope"
    every = " AND ".join(scope.values())
    counts = ", ".join(
        [f"{count_sql} FILTER ({every}) AS in_scope"]
        + [f"{count_sql} FILTER ({part}) AS {quote_ident('scope_' + key)}" for key, part in scope.items()]
    )
    cte = f"s AS (SELECT record_date, {counts} FROM {relation}, b WHERE {window} GROUP BY record_date),"
    columns = ", ".join(
        ["COALESCE(s.in_scope, 0) AS in_scope"]
        + [f"COALESCE(s.{quote_ident('scope_' + k)}, 0) AS {quote_ident('scope_' + k)}" for k in scope]
    )
    return cte, columns


def _aggregate_sql(
    relation: str,
    totals: str,
    frauds: str,
    hi_sql: str,
    days: int,
    where_sql: str,
    scope: dict[str, str] | None = None,
    count_sql: str = "count(*)",
    sample_column: str = "record_id",
) -> str:
    """One statement: per-day records, records in scope, hits, inspected hits, known frauds and
    sample ids.

    ``relation`` has record_id, record_date, subject_key and the rule's columns; ``totals`` has the
    record_date of every record (for declarations the header table alone: no join needed to count).
    ``where_sql`` is the rule's condition and scope as a plain conjunction in WHERE, where NULL is
    not a hit, so DuckDB pushes each single-table part below the join and only hits are grouped.
    ``hi_sql`` is the window's last day: a literal, or ``NEWEST`` (the newest record's day, taken
    from the per-day counts, so the records are read once). ``scope``: key -> SQL of each part of
    the rule's scope, counted (with ``count_sql``, as ``records`` counts) in one more pass over
    the window only when the rule has a scope, so that a scope that keeps nothing shows.
    ``sample_column``: the relation's column sample ids are taken from (the subject's record id).
    The output's ``hits`` counts hit rows (goods items for declarations), ``hit_subjects`` the
    distinct subjects hit; :func:`_result` turns them into the unit of ``records``.
    """
    window = f"record_date BETWEEN b.hi - INTERVAL {int(days) - 1} DAY AND b.hi"
    scope_cte, scope_columns = _scope_sql(scope or {}, count_sql, relation, window)
    scope_join = "LEFT JOIN s ON s.record_date = COALESCE(t.record_date, d.record_date)" if scope_cte else ""
    return f"""
        WITH t_all AS MATERIALIZED (
            SELECT record_date, count(*) AS records FROM {totals} GROUP BY record_date
        ),
        b AS (SELECT CAST({hi_sql} AS DATE) AS hi),
        t AS (SELECT t_all.* FROM t_all, b WHERE {window}),
        h AS (
            SELECT record_date, subject_key, count(*) AS row_hits, min({sample_column}) AS sample
            FROM {relation}, b
            WHERE {window} AND {where_sql}
            GROUP BY record_date, subject_key
        ),
        d AS (
            SELECT h.record_date, sum(h.row_hits) AS hits, count(*) AS hit_subjects,
                   count(*) FILTER (f.subject_key IS NOT NULL) AS inspected_hits,
                   count(*) FILTER (f.fraud) AS known_frauds, min(h.sample, {SAMPLE}) AS samples
            FROM h LEFT JOIN {frauds} f ON f.subject_key = h.subject_key
            GROUP BY h.record_date
        ),
        {scope_cte}
        per_day AS (
            SELECT COALESCE(t.record_date, d.record_date) AS day, b.hi, COALESCE(t.records, 0) AS records,
                   COALESCE(d.hits, 0) AS hits, COALESCE(d.hit_subjects, 0) AS hit_subjects,
                   COALESCE(d.inspected_hits, 0) AS inspected_hits,
                   COALESCE(d.known_frauds, 0) AS known_frauds, d.samples, {scope_columns}
            FROM t FULL JOIN d ON t.record_date = d.record_date CROSS JOIN b {scope_join}
        )
        SELECT * FROM per_day ORDER BY day
    """  # noqa: S608 (compiled rule and numbers we formatted)


def scope_parts(rule: RuleDef) -> dict[str, str]:
    """Scope key (offices, ...) -> its SQL test (NULL, i.e. out of scope, for a missing value)."""
    fields = SCOPE_FIELDS.get(rule.kind, {})
    return {key: in_list_sql(fields[key], values) for key, values in rule.scope.items()}


def where_sql(rule: RuleDef) -> str:
    """The rule's condition and scope for a WHERE clause (NULL there is no hit, as in the engine)."""
    columns = column_types(rule.kind)
    tree = compile_condition(rule.when, columns)
    parts = [condition_sql(tree, referenced_types(tree, columns)), *scope_parts(rule).values()]
    return "(" + " AND ".join(parts) + ")"


def _frauds_sql(kind: str) -> str:
    return (
        f"(SELECT target_id AS subject_key, bool_or({FRAUD_SQL}) AS fraud FROM {INSPECTIONS} "
        f"WHERE target_kind = {quote_text(kind)} GROUP BY target_id)"
    )


def _result(
    rule: RuleDef,
    version: int | None,
    days: int,
    until: date | None,
    per_day: pa.Table,
    path: str,
    started: float,
    access: DryRunAccess | None,
) -> DryRunResult:
    rows = per_day.to_pylist()
    keys = ("records", "hits", "hit_subjects", "inspected_hits", "known_frauds")
    total = {k: sum(int(r[k] or 0) for r in rows) for k in keys}
    hi = rows[0]["hi"] if rows else until
    # One unit: what `records` counts. Declarations: the declarations hit, not their goods items.
    per_declaration = rule.kind == "declaration"
    samples: list[str] = []
    for r in reversed(rows):  # the most recent hits first
        samples += sorted(r["samples"] or [])
    if rule.scope:
        in_scope = sum(int(r.get("in_scope") or 0) for r in rows)
        kept = {k: sum(int(r.get(f"scope_{k}") or 0) for r in rows) for k in rule.scope}
    else:
        in_scope, kept = total["records"], {}
    window_from = hi - timedelta(days=days - 1) if hi else None
    result = DryRunResult(
        rule_id=rule.id,
        version=version,
        kind=rule.kind,
        days=days,
        window_from=window_from,
        window_to=hi,
        hits_per_day=[
            {
                "day": r["day"].isoformat(),
                "hits": int((r["hit_subjects"] if per_declaration else r["hits"]) or 0),
                "hit_rows": int(r["hits"] or 0),
                "hit_subjects": int(r["hit_subjects"] or 0),
                "known_frauds": int(r["known_frauds"] or 0),
            }
            for r in rows
            if r["hits"]
        ],
        sample_ids=samples[:SAMPLE],
        path=path,
        seconds=time.perf_counter() - started,
        office=access.office if access else None,
        unmasked=access.unmasked if access else [],
        in_scope=in_scope,
        scope_kept=kept,
        valid_from=iso_moment(rule.valid_from),
        valid_to=iso_moment(rule.valid_to),
        records=total["records"],
        hits=total["hit_subjects"] if per_declaration else total["hits"],
        hit_rows=total["hits"],
        hit_subjects=total["hit_subjects"],
        inspected_hits=total["inspected_hits"],
        known_frauds=total["known_frauds"],
    )
    bound = access is not None and bool(access.office) and access.row_filtered(_source_tables(rule.kind))
    said = dry_run_notes(rule, result, office_bound=bound)
    result.notes, result.note_codes = [n.text for n in said], [n.said() for n in said]
    return result


def notes(rule: RuleDef, result: DryRunResult, *, office_bound: bool | None = None) -> list[str]:
    """The English sentences of :func:`sciti.risk.rules.dryrun_notes.dry_run_notes`."""
    return [n.text for n in dry_run_notes(rule, result, office_bound=office_bound)]


def _lake_query(lake: Lake, sql: str, access: DryRunAccess | None, tables: set[str]) -> pa.Table:
    """``sql`` over the lake: through the caller's views when there is a caller, else as stored."""
    if access is None:
        return query(lake, sql)
    return query(lake, sql, rules=access.view_rules(tables))


def _refuse_without_caller(rule: RuleDef) -> None:
    fields = protected_fields(rule)
    if fields:
        names = [n for ns in fields.values() for n in ns]
        raise ProtectedFieldsRefused(
            f"rule {rule.id!r} names {', '.join(names)} ({' and '.join(fields)} data): a dry-run of it "
            "must be made by a named account that may read them",
            remedy="dry-run it as yourself: `sciti risk rule dry-run ... --user NAME`, POST "
            "/api/v1/rules/dry-run or the rule page (with an unmask and a purpose where personal fields "
            "are named)",
            details={"fields": names},
        )


def dry_run(
    settings: Settings,
    rule: RuleDef,
    days: int = 30,
    *,
    until: date | datetime | None = None,
    version: int | None = None,
    lake: Lake | None = None,
    access: DryRunAccess | None = None,
) -> DryRunResult:
    """Hits, known frauds among hits, hits per day and sample record ids over the last ``days`` days.

    ``access``: whose dry-run it is (:func:`sciti.risk.rules.protected.authorize_dry_run`); the lake
    is then read through that caller's views. Without it every row is read, and a rule that names
    personal or restricted fields is refused (ProtectedFieldsRefused).
    """
    started = time.perf_counter()
    if not 1 <= days <= MAX_DAYS:
        from sciti.risk.rules.errors import RuleError

        raise RuleError(
            f"cannot dry-run over {days} days", remedy=f"give from 1 to {MAX_DAYS} days (ten years)"
        )
    if access is None:
        _refuse_without_caller(rule)
    lake = lake or open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    end = until.date() if isinstance(until, datetime) else until
    subject = SUBJECT_SQL[rule.kind]
    tables = _source_tables(rule.kind)
    if not all(lake.exists(t) for t in tables):
        return _result(rule, version, days, end, pa.table({}), "lake", started, access)
    hit_sql = where_sql(rule)
    inspected = lake.exists(INSPECTIONS) and (access is None or access.policy.can_read(INSPECTIONS))
    frauds = _frauds_sql(rule.kind) if inspected else NO_FRAUDS
    readable = set(tables) | ({INSPECTIONS} if inspected else set())
    if needs_features(rule):
        return dry_run_features(
            settings, lake, rule, version, days, end, hit_sql, frauds, started, access, readable
        )
    hi_sql = f"DATE '{end.isoformat()}'" if end is not None else NEWEST
    names = set(
        names_in(compile_condition(rule.when, {n: i.type for n, i in column_infos(rule.kind).items()}))
    )
    names |= {SCOPE_FIELDS[rule.kind][k] for k in rule.scope}
    names.discard("record_id")
    # A consignment's office, mode of transport and date: its manifest's.
    source = subject_source(rule.kind, names, lake, access)
    cols = ", ".join(f"{source.columns[n]} AS {quote_ident(n)}" for n in sorted(names))
    relation = (
        f"(SELECT {subject.record_id_sql} AS record_id, {subject.sample_id_sql} AS sample_id, "
        f"{source.date_sql} AS record_date, "
        f"{canonical_column(rule.kind, subject.key_column)} AS subject_key{', ' + cols if cols else ''} "
        f"FROM {source.from_sql})"
    )
    totals = f"(SELECT {source.date_sql} AS record_date FROM {source.totals_sql})"
    count = "count(DISTINCT subject_key)" if rule.kind == "declaration" else "count(*)"  # as `totals`
    sql = _aggregate_sql(
        relation, totals, frauds, hi_sql, days, hit_sql, scope_parts(rule), count, sample_column="sample_id"
    )
    per_day = _lake_query(lake, sql, access, readable | source.also_reads)
    return _result(rule, version, days, end, per_day, "lake", started, access)


__all__ = [
    "MAX_DAYS",
    "SUBJECT_SQL",
    "DryRunResult",
    "dry_run",
    "history_features",
    "names_history",
    "notes",
    "scope_parts",
    "where_sql",
]
