"""Benchmark: a 5-million-row declarations CSV through the KCS connector vs DuckDB copying it to Parquet.

Ours: ``Runner.ingest_path`` with the connector's outputs (one per record kind), the model's
validation (generated DuckDB SQL, the model itself for uncertain rows: HS 2022, ISO 3166 ...),
quarantine, provenance, record ids, Parquet written by DuckDB and the Iceberg commits.
Anchor, in the same run:
``COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'`` in DuckDB alone. Prints rows/s of both, the
ratio (goal >= 0.5) and our peak resident memory (goal < 4 GB).

The CSV is KCS rows (../shared/data/kcs) resampled with fresh declaration ids, written once to
bench/out/ and reused.

    .venv/bin/python bench/ingest_csv.py [--rows 5000000]
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

import duckdb
import psutil

from sciti.acquire import Runner, load_connector
from sciti.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SHARED = ROOT.parent / "shared" / "data"


def make_csv(rows: int) -> Path:
    path = OUT / f"declarations-{rows}.csv"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    source = SHARED / "kcs" / "train.csv"
    tmp = path.with_suffix(".tmp")
    duckdb.sql(f"""
        COPY (
          SELECT (10000000 + i)::VARCHAR AS "Declaration ID", * EXCLUDE ("Declaration ID", n)
          FROM range({rows}) r(i)
          JOIN (SELECT *, row_number() OVER () - 1 AS n FROM read_csv('{source}', all_varchar=true)) k
            ON k.n = (hash(r.i) % 37385)
          ORDER BY i
        ) TO '{tmp}' (HEADER, DELIMITER ',')
    """)
    tmp.rename(path)
    return path


class PeakRSS:
    """Samples this process's resident memory (and its children's) every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()

    csv_path = make_csv(args.rows)
    print(f"input: {csv_path.name} ({csv_path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows)")

    anchor_out = OUT / "anchor.parquet"
    started = time.perf_counter()
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{anchor_out}' (FORMAT parquet)")
    anchor_s = time.perf_counter() - started
    anchor_out.unlink()

    home = OUT / "instance"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, connectors_dir=ROOT / "connectors", codelists_dir=SHARED / "codelists")
    runner = Runner(settings)
    connector = load_connector(settings, "kcs")
    with PeakRSS() as rss:
        started = time.perf_counter()
        (result,) = runner.ingest_path(connector, csv_path)
        ours_s = time.perf_counter() - started
    assert result.status == "committed", result.error
    assert result.received == result.stored + result.quarantined == args.rows

    anchor_rate, ours_rate = args.rows / anchor_s, args.rows / ours_s
    print(f"duckdb COPY csv->parquet : {anchor_s:8.2f} s  {anchor_rate:12,.0f} rows/s")
    print(
        f"sciti ingest (kcs)       : {ours_s:8.2f} s  {ours_rate:12,.0f} rows/s "
        f"(stored {result.stored:,}, quarantined {result.quarantined:,}, tables {result.tables})"
    )
    print(f"ratio ours/anchor        : {ours_rate / anchor_rate:8.2f}   (goal >= 0.5)")
    print(f"peak RSS                 : {rss.peak / 2**30:8.2f} GB (goal < 4 GB)")


if __name__ == "__main__":
    main()
