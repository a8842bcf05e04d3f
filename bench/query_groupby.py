"""Benchmark: a group-by over std.declarations through sciti.lake.query vs DuckDB on the same files.

Builds N synthetic declarations (default 5,000,000) with DuckDB, appends them to an Iceberg table
shaped like ``std.declarations`` through ``Lake.append`` (one commit per million rows, so a few
large files), then times per office and month: count, sum of customs value, average mass.

Ours: ``sciti.lake.query`` (what ``sciti sql`` runs): catalog lookup, snapshot planning (plan
cache cleared every run, so planning is paid each time), a fresh locked-down DuckDB connection,
the field-id view. Anchor: DuckDB alone, one warm connection, ``read_parquet`` of the very same
file list. Warm-up once, then the median of 5 runs each. Goal: ours <= 1.5x the anchor.

Run: .venv/bin/python bench/query_groupby.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from sciti.lake import Lake, query
from sciti.lake.files import local_path
from sciti.lake.views import clear_plan_cache
from sciti.model import get_kind

CHUNK = 1_000_000
SQL = """
SELECT office_code, date_trunc('month', acceptance_date) AS month,
       count(*) AS declarations, sum(customs_value) AS value, avg(gross_mass_kg) AS mass
FROM {table}
GROUP BY ALL
ORDER BY office_code, month
"""

GENERATE = """
SELECT md5('declaration' || chr(31) || 'bench' || chr(31) || i::VARCHAR) AS record_id,
       'bench' AS source,
       'bench-batch-' || (i // {chunk})::VARCHAR AS batch_id,
       'synthetic:' || i::VARCHAR AS locator,
       now()::TIMESTAMPTZ AS ingested_at,
       'DEC' || lpad(i::VARCHAR, 10, '0') AS declaration_id,
       1::BIGINT AS version,
       'IM' AS declaration_type,
       DATE '2024-01-01' + (hash(i) % 730)::INTEGER AS acceptance_date,
       'OF' || lpad((hash(i * 7) % 40)::VARCHAR, 3, '0') AS office_code,
       ['CN', 'US', 'DE', 'VN', 'JP', 'KR', 'IN', 'TH'][1 + (hash(i * 3) % 8)::INTEGER]
           AS country_of_dispatch,
       lpad((hash(i * 11) % 999999)::VARCHAR, 6, '0') AS procedure_code,
       ((hash(i * 13) % 10000000) / 100.0)::DECIMAL(18, 4) AS customs_value,
       ((hash(i * 17) % 100000) / 10.0)::DOUBLE AS gross_mass_kg,
       (1 + hash(i * 19) % 20)::BIGINT AS goods_item_count,
       'IMP' || (hash(i * 23) % 50000)::VARCHAR AS importer_id
FROM range({start}, {stop}) t(i)
"""


def build(lake: Lake, rows: int) -> list[str]:
    kind = get_kind("declaration")
    lake.ensure_table(kind.ident, kind.arrow_schema())
    con = duckdb.connect()
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK)
        data = con.sql(GENERATE.format(chunk=CHUNK, start=start, stop=stop)).to_arrow_table()
        lake.append(kind.ident, data, batch_id=f"bench-{start}")
    table = lake.table(kind.ident)
    return [local_path(t.file.file_path) or "" for t in table.scan().plan_files()]


def timed(fn, runs: int) -> tuple[float, object]:
    fn()  # warm-up: file system cache, DuckDB's own caches
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _same(ours: list[dict], anchor: list[dict]) -> bool:
    """Equal groups, counts and sums; averages equal up to float rounding (parallel summation order)."""
    if len(ours) != len(anchor):
        return False
    for a, b in zip(ours, anchor, strict=True):
        if {k: v for k, v in a.items() if k != "mass"} != {k: v for k, v in b.items() if k != "mass"}:
            return False
        if abs(a["mass"] - b["mass"]) > 1e-9 * max(1.0, abs(b["mass"])):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200,000 rows: a smoke run, not a measurement")
    args = parser.parse_args()
    rows = 200_000 if args.quick else args.rows

    with tempfile.TemporaryDirectory(prefix="sciti-bench-") as tmp:
        home = Path(tmp)
        lake = Lake(f"sqlite:///{home / 'catalog.db'}", (home / "warehouse").as_uri())
        lake.ensure_zones()
        start = time.perf_counter()
        files = build(lake, rows)
        print(f"built {rows:,} rows in {len(files)} files in {time.perf_counter() - start:.1f}s")

        def ours():
            clear_plan_cache()
            return query(lake, SQL.format(table="std.declarations"))

        anchor_con = duckdb.connect()
        file_list = "[" + ", ".join(f"'{f}'" for f in files) + "]"

        def anchor():
            return anchor_con.sql(SQL.format(table=f"read_parquet({file_list})")).to_arrow_table()

        ours_s, ours_result = timed(ours, args.runs)
        anchor_s, anchor_result = timed(anchor, args.runs)

    same = _same(ours_result.to_pylist(), anchor_result.to_pylist())
    ratio = ours_s / anchor_s
    print(f"rows:            {rows:,}  groups: {ours_result.num_rows:,}  same result: {same}")
    print(f"sciti.lake.query: {ours_s * 1000:8.1f} ms (median of {args.runs})")
    print(f"DuckDB alone:     {anchor_s * 1000:8.1f} ms (median of {args.runs})")
    print(f"ratio ours/DuckDB: {ratio:.2f}x (goal <= 1.5x) {'OK' if ratio <= 1.5 else 'ABOVE GOAL'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
