"""Dry-run of a rule that reads derived features, with history as of each record's own date.

A rule over canonical fields only is one query over the lake (:mod:`sciti.risk.rules.dryrun`). A
rule naming a derived feature runs here, over ``features.lake_records`` + ``features.compute_batch``:
the same features the engine scores with. A rule naming a *history* feature (a trader's past
declarations, first-time, hit rates, a person's recent cash movements) gets it as of each record's
own date, as training does (``point_in_time``), from a reference built as of the window's end:
counted from today, a 2020 record would have no history at all (decision 0104).

The figures are counted by the same SQL as the lake path (``_aggregate_sql`` over the computed
features) and assembled by the same ``_result``, so both paths give one kind of result.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sciti.lake import Lake
from sciti.risk.errors import FeatureError
from sciti.risk.rules.columns import column_infos
from sciti.risk.rules.condition import names_in
from sciti.risk.rules.definition import RuleDef, compile_condition
from sciti.risk.rules.dryrun_subjects import SUBJECT_SQL, subject_source
from sciti.risk.rules.protected import DryRunAccess
from sciti.risk.rules.sql import quote_ident
from sciti.settings import Settings

if TYPE_CHECKING:
    from sciti.risk.rules.dryrun import DryRunResult


def needs_features(rule: RuleDef) -> bool:
    """Whether ``rule``'s condition names a derived feature (else the lake path answers it)."""
    infos = column_infos(rule.kind)
    tree = compile_condition(rule.when, {n: i.type for n, i in infos.items()})
    return any(infos[n].derived for n in names_in(tree) if n in infos)


def history_features(kind: str) -> frozenset[str]:
    """The derived features of ``kind`` that count or rate past records (a trader's declarations,
    first-time, hit rates, a person's cash movements): their value depends on the date they are
    taken as of. Declarations: the outputs of the history groups (features.yaml ``history``);
    cargo: the HS and origin hit rates; cash: the movements per person in the last 90 days."""
    from sciti.risk.features.reference import history_groups

    if kind == "declaration":
        return frozenset(name for g in history_groups() for name in g["outputs"].values())
    if kind in ("consignment", "road_cargo_info"):
        return frozenset({"hs_risk", "origin_risk"})
    if kind == "currency_declaration":
        return frozenset({"person_movements_90d", "person_near_threshold_90d"})
    return frozenset()


def names_history(rule: RuleDef) -> list[str]:
    """The history features ``rule``'s condition names, sorted."""
    infos = column_infos(rule.kind)
    tree = compile_condition(rule.when, {n: i.type for n, i in infos.items()})
    return sorted(names_in(tree) & history_features(rule.kind))


def _visible_ids(lake: Lake, kind: str, access: DryRunAccess) -> pa.Table | None:
    """Record ids of ``kind`` that the caller's row filters let through; None when the caller sees
    every row (nothing to filter)."""
    from sciti.risk.rules.dryrun import _lake_query, _source_tables

    tables = _source_tables(kind)
    if not access.row_filtered(tables):
        return None
    subject = SUBJECT_SQL[kind]
    sql = f"SELECT {subject.record_id_sql} AS record_id FROM {subject.from_sql}"  # noqa: S608 (our SQL)
    return _lake_query(lake, sql, access, set(tables))


def dry_run_features(
    settings: Settings,
    lake: Lake,
    rule: RuleDef,
    version: int | None,
    days: int,
    end: date | None,
    hit_sql: str,
    frauds: str,
    started: float,
    access: DryRunAccess | None,
    readable: set[str],
) -> DryRunResult:
    """The dry-run over the features ``rule`` names (the caller has checked its days and access)."""
    # dryrun imports this module at its top, so what the two paths share is imported here.
    from sciti.risk import features
    from sciti.risk.rules.dryrun import (
        NO_FRAUDS,
        _aggregate_sql,
        _lake_query,
        _result,
        scope_parts,
    )

    subject = SUBJECT_SQL[rule.kind]
    if end is None:  # the newest record's day, dated as lake_records dates it (decision 0116)
        source = subject_source(rule.kind, set(), lake, access)
        sql = f"SELECT max({source.date_sql}) AS hi FROM {source.totals_sql}"  # noqa: S608 (our SQL)
        found = _lake_query(lake, sql, access, readable | source.also_reads)
        end = found.column("hi")[0].as_py()
        if end is None:
            return _result(rule, version, days, None, pa.table({}), "features", started, access)
    lo = end - timedelta(days=days - 1)
    # Features are computed as the engine computes them, from every record they depend on; the
    # subjects counted are then only the records the caller may see (their office's).
    records = features.lake_records(settings, rule.kind, since=lo, until=end + timedelta(days=1))
    history = bool(names_history(rule))
    if history:
        # History as of each record's own date (as training computes it), not as of today: from a
        # reference built as of the window's end, with the events it was built from.
        reference = features.build_reference(settings, as_of=end)
        table = features.compute_batch(rule.kind, records, reference, point_in_time=True)
    else:
        try:
            reference = features.load_reference(settings)
        except FeatureError:  # none saved yet: compute from the lake as it is now (as the engine does)
            reference = features.build_reference(settings)
        table = features.compute_batch(rule.kind, records, reference)
    visible = _visible_ids(lake, rule.kind, access) if access is not None else None
    if visible is not None:
        table = table.filter(pc.is_in(table.column("record_id"), value_set=visible.column("record_id")))
    fraud_table = (
        _lake_query(lake, f"SELECT * FROM {frauds} AS x", access, readable)  # noqa: S608
        if frauds != NO_FRAUDS
        else None
    )
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("subjects_raw", table)
        # Each record is counted on the day the window selected it by (the lake row's record_date,
        # as the lake path's); compute_batch keeps that date where the record's fields give none.
        conn.register("days", records.select(["record_id", "record_date"]))
        sample = "declaration_record_id" if rule.kind == "declaration" else "record_id"
        conn.execute(
            "CREATE VIEW subjects AS SELECT s.* EXCLUDE (record_date), "
            "CAST(d.record_date AS DATE) AS record_date, "
            f"CAST(s.{quote_ident(subject.key_column)} AS VARCHAR) AS subject_key, "
            f"s.{quote_ident(sample)} AS __sample_id FROM subjects_raw s JOIN days d USING (record_id)"
        )
        if fraud_table is not None:
            conn.register("frauds", fraud_table)
        per_declaration = rule.kind == "declaration"
        sql = _aggregate_sql(
            "subjects",
            # as the lake path counts: declarations (not goods items), else records
            "(SELECT DISTINCT record_date, subject_key FROM subjects)"
            if per_declaration
            else "(SELECT record_date FROM subjects)",
            "frauds" if fraud_table is not None else NO_FRAUDS,
            f"DATE '{end}'",
            days,
            hit_sql,
            scope_parts(rule),
            "count(DISTINCT subject_key)" if per_declaration else "count(*)",
            sample_column="__sample_id",
        )
        per_day = conn.sql(sql).to_arrow_table()
    finally:
        conn.close()
    result = _result(rule, version, days, end, per_day, "features", started, access)
    if history:
        result.history_as_of = "record_date"
    return result


__all__ = ["dry_run_features", "history_features", "names_history", "needs_features"]
