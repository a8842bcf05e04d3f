"""Benchmark: a 5-million-row declarations CSV through a connector vs DuckDB copying it to Parquet.

Ours: ``Runner.ingest_path``, everything a real ingest does: the file's SHA-256 and its copy in the
object store, the batch registry, reading the CSV, the connector's mapping, the model's validation
(generated DuckDB SQL; the model itself for uncertain rows), quarantine with locators and reasons,
provenance and record ids, Parquet written by DuckDB with Iceberg field ids, the Iceberg commits.

Measured with two connectors over the same file:

- ``kcs-declarations``: the KCS connector's declaration output alone (one record kind, 15 mapped fields
  of the table's 41 columns). This is the figure the goal is about: one declarations CSV in, one
  declarations table out, like the anchor's one Parquet file.
- ``kcs``: the full KCS connector, three outputs (declarations, goods items, inspection results),
  so it writes three tables and about three times the anchor's columns; printed for reference.

Anchor, in the same run, just before each of ours: ``COPY (SELECT * FROM read_csv(...)) TO
'x.parquet'`` in DuckDB alone. Prints rows/s of both, the ratio (goal >= 0.5) and our peak
resident memory (goal < 4 GB). The CPU seconds of both are printed too: on a machine shared with
other work the wall-clock ratio moves with the load, the CPU ratio much less.

The CSV is KCS rows (../shared/data/kcs) resampled with fresh declaration ids, written once to
bench/out/ and reused.

    .venv/bin/python bench/ingest_csv.py [--rows 5000000] [--only-single]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import threading
import time
from pathlib import Path

import duckdb
import psutil

from sciti.acquire import BatchResult, Runner, load_connector
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


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread (DuckDB's and Arrow's workers included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def anchor(csv_path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds DuckDB alone takes to copy the CSV to one Parquet file."""
    out = OUT / "anchor.parquet"
    started, cpu = time.perf_counter(), cpu_seconds()
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{out}' (FORMAT parquet)")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    out.unlink()
    return seconds, cpu


def ours(csv_path: Path, rows: int, single: bool) -> tuple[float, float, int, BatchResult]:
    """(wall, CPU seconds, peak RSS bytes, result) of one ingest into a fresh instance."""
    home = OUT / ("instance-single" if single else "instance-kcs")  # one per run: catalogs are cached
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home, connectors_dir=ROOT / "connectors", codelists_dir=SHARED / "codelists")
    runner = Runner(settings)
    connector = load_connector(settings, "kcs")
    if single:  # the declaration output alone, as its own connector
        connector = connector.model_copy(
            update={"name": "kcs-declarations", "outputs": connector.outputs[:1]}
        )
    with PeakRSS() as rss:
        started, cpu = time.perf_counter(), cpu_seconds()
        (result,) = runner.ingest_path(connector, csv_path)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    assert result.status == "committed", result.error
    assert result.received == result.stored + result.quarantined + result.already_stored == rows
    return seconds, cpu, rss.peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--only-single", action="store_true", help="skip the three-output KCS run")
    args = parser.parse_args()

    csv_path = make_csv(args.rows)
    print(f"input: {csv_path.name} ({csv_path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows)")
    runs = [("kcs-declarations", True)] + ([] if args.only_single else [("kcs (3 outputs)", False)])
    print(f"cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f}")
    for label, single in runs:
        anchor_s, anchor_cpu = anchor(csv_path)
        ours_s, ours_cpu, peak, result = ours(csv_path, args.rows, single)
        anchor_rate, ours_rate = args.rows / anchor_s, args.rows / ours_s
        print(
            f"duckdb COPY csv->parquet    : {anchor_s:8.2f} s  {anchor_rate:12,.0f} rows/s  "
            f"(CPU {anchor_cpu:.1f} s)"
        )
        print(
            f"sciti ingest {label:17s}: {ours_s:8.2f} s  {ours_rate:12,.0f} rows/s  (CPU {ours_cpu:.1f} s; "
            f"stored {result.stored:,}, quarantined {result.quarantined:,})"
        )
        print(
            f"  ratio ours/anchor         : {ours_rate / anchor_rate:8.2f}   (goal >= 0.5; "
            f"by CPU time {anchor_cpu / ours_cpu:.2f})"
        )
        print(f"  peak RSS                  : {peak / 2**30:8.2f} GB (goal < 4 GB)")


if __name__ == "__main__":
    main()
