"""Benchmark: many small units in a row, time per unit as the tables' commits accumulate.

A clearance system that pushes each declaration as it is lodged (``POST /api/v1/ingest/kcs``), or
a transport that commits every few seconds, sends the runner one small unit after another. Each
unit is a batch of its own: its rows checked against what is stored, and one Iceberg commit per
table (three for KCS). Every commit adds a snapshot, a manifest and a data file, which upkeep
thins and compacts only once an hour (decision 0065), so what matters is how the cost of a unit
grows with the commits before it.

A fresh embedded instance; real KCS rows (../shared/data/kcs/valid.csv), each pushed as a one-row
CSV through ``Runner.ingest_bytes`` as the API does. Prints the time per unit for each block of
units. Anchor, same run: the same rows as one file, into a second fresh instance.

    .venv/bin/python bench/small_units.py [--units 400] [--block 100] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sciti.acquire import Runner, load_connector
from sciti.ops import migrate
from sciti.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def instance(home: Path) -> tuple[Runner, object]:
    home.mkdir(parents=True)
    settings = Settings(home=home, connectors_dir=ROOT / "connectors", codelists_dir=SHARED / "codelists")
    migrate(settings.resolved_ops_db_url)
    return Runner(settings), load_connector(settings, "kcs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--block", type=int, default=100, help="units per printed figure")
    parser.add_argument("--quick", action="store_true", help="60 units: a smoke run")
    args = parser.parse_args()
    units, block = (60, 20) if args.quick else (args.units, args.block)

    lines = (SHARED / "kcs" / "valid.csv").read_text("utf-8").splitlines()
    header, rows = lines[0], lines[1 : units + 1]
    with tempfile.TemporaryDirectory(prefix="sciti-bench-") as tmp:
        runner, kcs = instance(Path(tmp) / "anchor")
        started = time.perf_counter()
        whole = runner.ingest_bytes(kcs, ("\n".join([header, *rows]) + "\n").encode(), "kcs.csv")
        anchor = time.perf_counter() - started
        assert whole.received == len(rows), whole

        runner, kcs = instance(Path(tmp) / "ours")
        print(f"ours    {len(rows)} KCS rows, each pushed as a unit of its own (3 tables, 1 commit each)")
        print(f"{'units':>13} {'ms/unit':>8}")
        received, first = 0, 0.0
        for start in range(0, len(rows), block):
            began = time.perf_counter()
            for n, row in enumerate(rows[start : start + block], start + 1):
                result = runner.ingest_bytes(kcs, f"{header}\n{row}\n".encode(), f"push-{n}.csv")
                assert result.status == "committed", result
                received += result.received
            per = (time.perf_counter() - began) / len(rows[start : start + block])
            first = first or per
            print(f"{start + 1:>6}-{min(start + block, len(rows)):<6} {per * 1000:>8.0f}", flush=True)
        assert received == len(rows)
        print(f"        last block / first block: {per / first:.2f} (1.00: commits before cost nothing)")
        print(
            f"anchor  the same {len(rows)} rows as one file: {anchor:.2f} s, {anchor / len(rows) * 1000:.1f} "
            f"ms/row; ours/anchor at the last block {per / (anchor / len(rows)):.0f}x  "
            f"(cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
