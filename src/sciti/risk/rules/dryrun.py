"""Dry-run: what a rule would have hit over the last N days of lake data, before anyone approves it.

One DuckDB statement does the work. A rule over canonical fields only is pushed straight into the
lake query (Iceberg snapshot -> DuckDB view -> filter -> aggregate), so the cost is one scan of
the columns the rule reads. A rule that reads derived features runs over
``features.lake_records`` + ``features.compute_batch`` (the same features the engine scores with).
The window ends at ``until`` or, by default, at the newest record of the kind in the lake, so a
dry-run over a historical data set (e.g. KCS 2020) is meaningful.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from sciti.lake import Lake, open_lake, query
from sciti.model import get_kind
from sciti.risk.errors import FeatureError
from sciti.risk.rules.columns import SCOPE_FIELDS, column_infos, column_types
from sciti.risk.rules.condition import names_in, referenced_types
from sciti.risk.rules.definition import RuleDef, compile_condition
from sciti.risk.rules.sql import condition_sql, in_list_sql, quote_ident, quote_text
from sciti.settings import Settings

SAMPLE = 20
INSPECTIONS = "std.inspection_results"
# Known fraud: the label when given, else the severity, else a seizure.
FRAUD_SQL = "COALESCE(fraud, fraud_severity > 0, outcome = 'seizure', FALSE)"
NEWEST = "(SELECT max(record_date) FROM t_all)"  # the window ends at the newest record's day
NO_FRAUDS = "(SELECT NULL::VARCHAR AS subject_key, NULL::BOOLEAN AS fraud WHERE FALSE)"


@dataclass(frozen=True)
class Subject:
    """How to read one kind's subject rows from the lake with canonical columns."""

    kind: str
    from_sql: str  # FROM clause; item columns under alias i (declarations), else t
    date_sql: str  # the date a record is assessed for
    key_column: str  # business key inspection results name as target_id
    record_id_sql: str


SUBJECT_SQL: dict[str, Subject] = {
    "declaration": Subject(
        "declaration",
        "std.declarations d JOIN std.declaration_items i "
        "ON i.declaration_id = d.declaration_id AND i.declaration_version = d.version",
        "COALESCE(d.acceptance_date, CAST(d.issue_datetime AS DATE))",
        "declaration_id",
        "i.record_id",
    ),
    "consignment": Subject(
        "consignment",
        "std.consignments t",
        "CAST(t.ingested_at AS DATE)",
        "transport_document",
        "t.record_id",
    ),
    "road_cargo_info": Subject(
        "road_cargo_info",
        "std.road_cargo_info t",
        "CAST(COALESCE(t.submitted_at, t.ingested_at) AS DATE)",
        "reference",
        "t.record_id",
    ),
    "passenger": Subject(
        "passenger",
        "std.passengers t",
        "COALESCE(t.departure_date, CAST(t.departure_at AS DATE), CAST(t.ingested_at AS DATE))",
        "record_ref",
        "t.record_id",
    ),
    "currency_declaration": Subject(
        "currency_declaration",
        "std.currency_declarations t",
        "CAST(t.declared_at AS DATE)",
        "declaration_number",
        "t.record_id",
    ),
}


@dataclass
class DryRunResult:
    rule_id: str
    version: int | None
    kind: str
    days: int
    window_from: date | None
    window_to: date | None
    records: int  # records in the window (declaration headers, not items, for declarations)
    hits: int  # rows the rule hits (goods items for declarations)
    hit_subjects: int  # distinct subjects hit
    inspected_hits: int  # subjects hit that were inspected
    known_frauds: int  # subjects hit with a known fraud among their inspection results
    hits_per_day: list[dict[str, Any]] = field(default_factory=list)
    sample_ids: list[str] = field(default_factory=list)
    path: str = "lake"  # lake (canonical columns pushed down) or features (derived features computed)
    seconds: float = 0.0

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


def _table_of(kind: str) -> str:
    return get_kind(kind).ident


def _source_tables(kind: str) -> list[str]:
    return ["std.declarations", "std.declaration_items"] if kind == "declaration" else [_table_of(kind)]


def _canonical_column(kind: str, name: str) -> str:
    """The qualified SQL column of a canonical field (item wins over header for declarations)."""
    if kind == "declaration":
        item = set(get_kind("declaration_item").field_names) | {"record_id"}
        return f"i.{quote_ident(name)}" if name in item else f"d.{quote_ident(name)}"
    return f"t.{quote_ident(name)}"


def _needs_features(rule: RuleDef) -> bool:
    infos = column_infos(rule.kind)
    tree = compile_condition(rule.when, {n: i.type for n, i in infos.items()})
    return any(infos[n].derived for n in names_in(tree) if n in infos)


def _aggregate_sql(relation: str, totals: str, frauds: str, hi_sql: str, days: int, where_sql: str) -> str:
    """One statement: per-day records, hits, inspected hits, known frauds and sample ids.

    ``relation`` has record_id, record_date, subject_key and the rule's columns; ``totals`` has the
    record_date of every record (for declarations the header table alone: no join needed to count).
    ``where_sql`` is the rule's condition and scope as a plain conjunction in WHERE, where NULL is
    not a hit, so DuckDB pushes each single-table part below the join and only hits are grouped.
    ``hi_sql`` is the window's last day: a literal, or ``NEWEST`` (the newest record's day, taken
    from the per-day counts, so the records are read once).
    """
    window = f"record_date BETWEEN b.hi - INTERVAL {int(days) - 1} DAY AND b.hi"
    return f"""
        WITH t_all AS MATERIALIZED (
            SELECT record_date, count(*) AS records FROM {totals} GROUP BY record_date
        ),
        b AS (SELECT CAST({hi_sql} AS DATE) AS hi),
        t AS (SELECT t_all.* FROM t_all, b WHERE {window}),
        h AS (
            SELECT record_date, subject_key, count(*) AS row_hits, min(record_id) AS sample
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
        )
        SELECT COALESCE(t.record_date, d.record_date) AS day, b.hi, COALESCE(t.records, 0) AS records,
               COALESCE(d.hits, 0) AS hits, COALESCE(d.hit_subjects, 0) AS hit_subjects,
               COALESCE(d.inspected_hits, 0) AS inspected_hits, COALESCE(d.known_frauds, 0) AS known_frauds,
               d.samples
        FROM t FULL JOIN d ON t.record_date = d.record_date CROSS JOIN b
        ORDER BY day
    """  # noqa: S608 (compiled rule and numbers we formatted)


def where_sql(rule: RuleDef) -> str:
    """The rule's condition and scope for a WHERE clause (NULL there is no hit, as in the engine)."""
    columns = column_types(rule.kind)
    tree = compile_condition(rule.when, columns)
    fields = SCOPE_FIELDS.get(rule.kind, {})
    parts = [condition_sql(tree, referenced_types(tree, columns))]
    parts += [in_list_sql(fields[key], values) for key, values in rule.scope.items()]
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
) -> DryRunResult:
    rows = per_day.to_pylist()
    keys = ("records", "hits", "hit_subjects", "inspected_hits", "known_frauds")
    total = {k: sum(int(r[k] or 0) for r in rows) for k in keys}
    hi = rows[0]["hi"] if rows else until
    samples: list[str] = []
    for r in reversed(rows):  # the most recent hits first
        samples += sorted(r["samples"] or [])
    return DryRunResult(
        rule_id=rule.id,
        version=version,
        kind=rule.kind,
        days=days,
        window_from=hi - timedelta(days=days - 1) if hi else None,
        window_to=hi,
        hits_per_day=[
            {
                "day": r["day"].isoformat(),
                "hits": int(r["hits"] or 0),
                "hit_subjects": int(r["hit_subjects"] or 0),
                "known_frauds": int(r["known_frauds"] or 0),
            }
            for r in rows
            if r["hits"]
        ],
        sample_ids=samples[:SAMPLE],
        path=path,
        seconds=time.perf_counter() - started,
        **total,
    )


def dry_run(
    settings: Settings,
    rule: RuleDef,
    days: int = 30,
    *,
    until: date | datetime | None = None,
    version: int | None = None,
    lake: Lake | None = None,
) -> DryRunResult:
    """Hits, known frauds among hits, hits per day and sample record ids over the last ``days`` days."""
    started = time.perf_counter()
    if days < 1:
        from sciti.risk.rules.errors import RuleError

        raise RuleError(f"cannot dry-run over {days} days", remedy="give at least 1 day")
    lake = lake or open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    end = until.date() if isinstance(until, datetime) else until
    subject = SUBJECT_SQL[rule.kind]
    if not all(lake.exists(t) for t in _source_tables(rule.kind)):
        return _result(rule, version, days, end, pa.table({}), "lake", started)
    hit_sql = where_sql(rule)
    frauds = _frauds_sql(rule.kind) if lake.exists(INSPECTIONS) else NO_FRAUDS
    if _needs_features(rule):
        return _dry_run_features(settings, lake, rule, version, days, end, hit_sql, frauds, started)
    hi_sql = f"DATE '{end.isoformat()}'" if end is not None else NEWEST
    names = set(
        names_in(compile_condition(rule.when, {n: i.type for n, i in column_infos(rule.kind).items()}))
    )
    names |= {SCOPE_FIELDS[rule.kind][k] for k in rule.scope}
    names.discard("record_id")
    cols = ", ".join(f"{_canonical_column(rule.kind, n)} AS {quote_ident(n)}" for n in sorted(names))
    relation = (
        f"(SELECT {subject.record_id_sql} AS record_id, {subject.date_sql} AS record_date, "
        f"{_canonical_column(rule.kind, subject.key_column)} AS subject_key{', ' + cols if cols else ''} "
        f"FROM {subject.from_sql})"
    )
    header = subject.from_sql.split(" JOIN ")[0]
    totals = f"(SELECT {subject.date_sql} AS record_date FROM {header})"
    per_day = query(lake, _aggregate_sql(relation, totals, frauds, hi_sql, days, hit_sql))
    return _result(rule, version, days, end, per_day, "lake", started)


def _dry_run_features(
    settings: Settings,
    lake: Lake,
    rule: RuleDef,
    version: int | None,
    days: int,
    end: date | None,
    hit_sql: str,
    frauds: str,
    started: float,
) -> DryRunResult:
    from sciti.risk import features

    subject = SUBJECT_SQL[rule.kind]
    if end is None:
        source = subject.from_sql.split(" JOIN ")[0]
        end = query(lake, f"SELECT max({subject.date_sql}) AS hi FROM {source}").column("hi")[0].as_py()  # noqa: S608
        if end is None:
            return _result(rule, version, days, None, pa.table({}), "features", started)
    lo = end - timedelta(days=days - 1)
    records = features.lake_records(settings, rule.kind, since=lo, until=end + timedelta(days=1))
    try:
        reference = features.load_reference(settings)
    except FeatureError:  # none saved yet: compute from the lake as it is now (as the engine does)
        reference = features.build_reference(settings)
    table = features.compute_batch(rule.kind, records, reference)
    fraud_table = query(lake, f"SELECT * FROM {frauds} AS x") if frauds != NO_FRAUDS else None  # noqa: S608
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("subjects_raw", table)
        conn.execute(
            "CREATE VIEW subjects AS SELECT * EXCLUDE (record_date), "
            "CAST(record_date AS DATE) AS record_date, "
            f"CAST({quote_ident(subject.key_column)} AS VARCHAR) AS subject_key FROM subjects_raw"
        )
        if fraud_table is not None:
            conn.register("frauds", fraud_table)
        sql = _aggregate_sql(
            "subjects",
            "(SELECT DISTINCT record_date, subject_key FROM subjects)",
            "frauds" if fraud_table is not None else NO_FRAUDS,
            f"DATE '{end}'",
            days,
            hit_sql,
        )
        per_day = conn.sql(sql).to_arrow_table()
    finally:
        conn.close()
    return _result(rule, version, days, end, per_day, "features", started)


def dry_run_version(
    settings: Settings,
    session: Any,
    rule_id: str,
    version: int | None = None,
    days: int = 30,
    *,
    actor: str,
    until: date | datetime | None = None,
) -> DryRunResult:
    """Dry-run a stored version and keep its figures (the approver sees what the author saw)."""
    from sciti.access.audit import audit
    from sciti.ops import utcnow
    from sciti.ops.rules_tables import RuleDryRun
    from sciti.risk.rules.store import definition_of, get_version

    row = get_version(session, rule_id, version)
    result = dry_run(settings, definition_of(row), days, until=until, version=row.version)
    session.add(
        RuleDryRun(
            version_id=row.id,
            rule_id=rule_id,
            version=row.version,
            days=days,
            records=result.records,
            hits=result.hit_subjects,
            known_frauds=result.known_frauds,
            hit_rate=result.hit_rate,
            result=result.to_dict(),
            actor=actor,
            at=utcnow(),
        )
    )
    audit(
        session,
        actor=actor,
        action="rule.dry_run",
        target=f"rule:{rule_id}",
        details={"version": row.version, "days": days, "hits": result.hit_subjects},
    )
    return result


__all__ = ["SUBJECT_SQL", "DryRunResult", "dry_run", "dry_run_version", "where_sql"]
