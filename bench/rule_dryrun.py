"""Benchmark: dry-run of one risk rule over N declarations (default 5,000,000) in the lake.

Builds N synthetic declarations with one goods item each (like the KCS data) and inspection results
for 3% of them, appended to Iceberg tables shaped like ``std.declarations``,
``std.declaration_items`` and ``std.inspection_results`` (one commit per million rows). The rule
reads header and item fields and has an office scope; the window covers every declaration.

Ours: ``sciti.risk.rules.dry_run`` as the API and CLI run it: window bound from the lake, snapshot
planning, a locked-down DuckDB connection, the compiled predicate, hits, known frauds among hits,
hits per day, sample ids. Anchor: DuckDB alone, one warm connection, the same compiled predicate
and the same aggregate SQL over ``read_parquet`` of the very same files; a second anchor line
gives the bare predicate count. Warm-up once, then the median of 5 runs. Goal: ours < 5 s.

Run: .venv/bin/python bench/rule_dryrun.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from sciti.lake import Lake
from sciti.lake.files import local_path
from sciti.lake.views import clear_plan_cache
from sciti.model import get_kind
from sciti.risk.rules import dry_run, parse_rule
from sciti.risk.rules.dryrun import FRAUD_SQL, _aggregate_sql, where_sql
from sciti.settings import Settings

CHUNK = 1_000_000
GOAL_SECONDS = 5.0
RULE = {
    "id": "BENCH-LOWPRICE",
    "title": "Heavy goods from CN/VN at a very low price per kg",
    "kind": "declaration",
    "scope": {"offices": [f"OF{n:03d}" for n in range(0, 40, 2)]},
    "when": "net_mass_kg > 1000 and item_price / net_mass_kg < 0.5 and country_of_origin in ('CN', 'VN')",
    "weight": 30,
    "reason": "{net_mass_kg} kg at {item_price}",
}

HEADERS = """
SELECT md5('declaration' || chr(31) || 'bench' || chr(31) || i::VARCHAR) AS record_id,
       'bench' AS source, 'bench-' || (i // {chunk})::VARCHAR AS batch_id,
       'synthetic:' || i::VARCHAR AS locator,
       now()::TIMESTAMPTZ AS ingested_at,
       'DEC' || lpad(i::VARCHAR, 10, '0') AS declaration_id, 1::BIGINT AS version,
       'IM' AS declaration_type,
       DATE '2024-01-01' + (hash(i) % 730)::INTEGER AS acceptance_date,
       'OF' || lpad((hash(i * 7) % 40)::VARCHAR, 3, '0') AS office_code,
       'IMP' || (hash(i * 23) % 50000)::VARCHAR AS importer_id
FROM range({start}, {stop}) t(i)
"""
ITEMS = """
SELECT md5('declaration_item' || chr(31) || 'bench' || chr(31) || i::VARCHAR) AS record_id,
       'bench' AS source, 'bench-' || (i // {chunk})::VARCHAR AS batch_id,
       'synthetic:' || i::VARCHAR AS locator,
       now()::TIMESTAMPTZ AS ingested_at,
       md5('declaration' || chr(31) || 'bench' || chr(31) || i::VARCHAR) AS parent_record_id,
       'DEC' || lpad(i::VARCHAR, 10, '0') AS declaration_id, 1::BIGINT AS declaration_version,
       1::BIGINT AS item_number,
       lpad((hash(i * 5) % 999999)::VARCHAR, 6, '0') AS hs_code,
       ['CN', 'US', 'DE', 'VN', 'JP', 'KR', 'IN', 'TH'][1 + (hash(i * 3) % 8)::INTEGER] AS country_of_origin,
       ((hash(i * 17) % 100000) / 10.0)::DOUBLE AS net_mass_kg,
       ((hash(i * 13) % 10000000) / 100.0)::DECIMAL(18, 4) AS item_price
FROM range({start}, {stop}) t(i)
"""
INSPECTIONS = """
SELECT md5('inspection_result' || chr(31) || 'bench' || chr(31) || i::VARCHAR) AS record_id,
       'bench' AS source, 'bench-' || (i // {chunk})::VARCHAR AS batch_id,
       'synthetic:' || i::VARCHAR AS locator,
       now()::TIMESTAMPTZ AS ingested_at,
       'INS' || i::VARCHAR AS inspection_id, 'declaration' AS target_kind,
       'DEC' || lpad(i::VARCHAR, 10, '0') AS target_id, 'DEC' || lpad(i::VARCHAR, 10, '0') AS declaration_id,
       DATE '2024-01-01' + (hash(i) % 730)::INTEGER AS inspected_on,
       CASE WHEN hash(i * 29) % 4 = 0 THEN 'discrepancy' ELSE 'no_discrepancy' END AS outcome,
       hash(i * 29) % 4 = 0 AS fraud
FROM range({start}, {stop}) t(i) WHERE hash(i * 31) % 100 < 3
"""


def build(lake: Lake, rows: int) -> dict[str, list[str]]:
    con = duckdb.connect()
    files: dict[str, list[str]] = {}
    for kind_name, sql in (
        ("declaration", HEADERS),
        ("declaration_item", ITEMS),
        ("inspection_result", INSPECTIONS),
    ):
        kind = get_kind(kind_name)
        lake.ensure_table(kind.ident, kind.arrow_schema())
        for start in range(0, rows, CHUNK):
            stop = min(rows, start + CHUNK)
            data = con.sql(sql.format(chunk=CHUNK, start=start, stop=stop)).to_arrow_table()
            lake.append(kind.ident, data, batch_id=f"bench-{kind_name}-{start}")
        table = lake.table(kind.ident)
        files[kind.ident] = [local_path(t.file.file_path) or "" for t in table.scan().plan_files()]
    return files


def timed(fn, runs: int) -> tuple[float, object]:
    fn()  # warm-up: file system cache, DuckDB's own caches
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200,000 rows: a smoke run, not a measurement")
    args = parser.parse_args()
    rows = 200_000 if args.quick else args.rows
    rule = parse_rule(RULE)

    with tempfile.TemporaryDirectory(prefix="sciti-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home)
        lake = Lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
        lake.ensure_zones()
        start = time.perf_counter()
        files = build(lake, rows)
        print(f"built {rows:,} declarations (+ items, inspections) in {time.perf_counter() - start:.1f}s")

        def ours():
            clear_plan_cache()
            return dry_run(settings, rule, 730, lake=lake)

        def parquet(ident: str) -> str:
            return "read_parquet([" + ", ".join(f"'{f}'" for f in files[ident]) + "])"

        anchor_con = duckdb.connect()
        anchor_con.execute("SET TimeZone = 'UTC'")
        hit_sql = where_sql(rule)
        relation = (
            "(SELECT i.record_id, d.acceptance_date AS record_date, d.declaration_id AS subject_key, "
            "i.net_mass_kg, i.item_price, i.country_of_origin, d.office_code "
            f"FROM {parquet('std.declarations')} d JOIN {parquet('std.declaration_items')} i "
            "ON i.declaration_id = d.declaration_id AND i.declaration_version = d.version)"
        )
        totals = f"(SELECT acceptance_date AS record_date FROM {parquet('std.declarations')})"
        frauds = (
            f"(SELECT target_id AS subject_key, bool_or({FRAUD_SQL}) AS fraud "
            f"FROM {parquet('std.inspection_results')} WHERE target_kind = 'declaration' GROUP BY target_id)"
        )
        per_day_sql = _aggregate_sql(relation, totals, frauds, "DATE '2025-12-30'", 730, hit_sql)

        def anchor():
            return anchor_con.sql(per_day_sql).to_arrow_table()

        # The same compiled predicate over the join, counted: no window, no per-day figures, no frauds.
        bare_sql = f"SELECT count(*) FROM {relation} WHERE {hit_sql}"  # noqa: S608

        ours_s, result = timed(ours, args.runs)
        anchor_s, anchor_table = timed(anchor, args.runs)
        bare_s, bare = timed(lambda: anchor_con.execute(bare_sql).fetchone()[0], args.runs)
        anchor_hits = sum(r["hit_subjects"] for r in anchor_table.to_pylist())
        same = anchor_hits == result.hit_subjects == bare
        print(
            f"ours    dry_run (lake, {result.days} days): {ours_s:6.2f} s"
            f"  -> {rows / ours_s:12,.0f} declarations/s"
            f"  hits {result.hit_subjects:,}, known frauds {result.known_frauds:,}"
        )
        print(
            f"anchor  DuckDB, same SQL on the same Parquet files: {anchor_s:6.2f} s  (hits {anchor_hits:,})"
        )
        print(f"anchor  DuckDB, bare predicate count (join + filter): {bare_s:6.2f} s  (hits {bare:,})")
        print(f"ratio   ours/anchor = {ours_s / anchor_s:.2f}   same answer: {same}")
        verdict = "meets" if ours_s < GOAL_SECONDS else "MISSES"
        print(
            f"goal    dry-run over {rows:,} declarations < {GOAL_SECONDS:.0f} s: {ours_s:.2f} s"
            f" ({verdict} the goal)"
        )
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
