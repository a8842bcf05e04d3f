"""Demo-world generation speed: records per second per feed, and peak memory.

    python bench/demo_generate.py [--scale small] [--seed 1] [--quick]

Anchor (measured in the same run): Arrow's CSV writer alone writing as many rows of the same
declaration columns from ready-made arrays: the I/O floor any generator pays. Also printed: the
rate the issue's target implies (large world, 10M declarations, in 15 minutes) and this run's
declarations rate projected to the large world.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sciti.demo import generate, load_scale, plan
from sciti.demo.decl_feeds import HEADER

TARGET_DECLARATIONS_PER_S = 10_000_000 / (15 * 60)


def anchor_rows_per_s(rows: int, out: Path) -> float:
    """Write ``rows`` declaration-shaped rows with pyarrow alone."""
    rng = np.random.default_rng(0)
    n = min(rows, 50_000)
    cols = {}
    for f in HEADER:
        if pa.types.is_string(f.type):
            cols[f.name] = pa.array(np.char.add("X", rng.integers(0, 10**9, n).astype(str)))
        elif pa.types.is_integer(f.type):
            cols[f.name] = pa.array(rng.integers(0, 1000, n))
        else:
            cols[f.name] = pa.array(np.round(rng.random(n) * 1e5, 2)).cast(f.type, safe=False)
    table = pa.table(cols, schema=HEADER)
    start = time.perf_counter()
    with pacsv.CSVWriter(str(out), HEADER) as w:
        for _ in range(max(1, rows // n)):
            w.write_table(table)
    return max(1, rows // n) * n / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny world (smoke run, not a measurement)")
    ap.add_argument("--workers", type=int, default=1, help="processes for declaration chunks")
    args = ap.parse_args()
    scale = load_scale("tiny" if args.quick else args.scale)
    spent: dict[str, float] = {}
    last = [time.perf_counter()]

    def tick(feed: str, done: int, total: int) -> None:
        now = time.perf_counter()
        spent[feed] = spent.get(feed, 0.0) + now - last[0]
        last[0] = now

    with tempfile.TemporaryDirectory(prefix="sciti-demo-bench-") as tmp:
        t0 = time.perf_counter()
        report = generate(Path(tmp) / "world", scale, args.seed, progress=tick, workers=args.workers)
        total = time.perf_counter() - t0
        anchor = anchor_rows_per_s(int(scale.declarations), Path(tmp) / "anchor.csv")
    units = plan(scale)
    print(f"demo world '{scale.name}', seed {args.seed}, {args.workers} worker(s): {total:.1f} s in all")
    print(f"{'feed':<14}{'units':>12}{'seconds':>10}{'units/s':>12}")
    for feed, secs in spent.items():
        n = units.get(feed, 0)
        print(f"{feed:<14}{n:>12,}{secs:>10.2f}{n / secs if secs else 0:>12,.0f}")
    decl_rate = units["declarations"] / spent["declarations"]
    print(f"files written: {sum(report.counts.get(k, 0) for k in report.counts if '/' in k):,} rows/lines")
    print(f"ours:   {decl_rate:,.0f} declarations/s (items, parties, XML, CUSCAR, inspections, truth)")
    print(f"anchor: {anchor:,.0f} rows/s, Arrow CSV writer alone on the same header columns")
    print(f"ratio ours/anchor: {decl_rate / anchor:.3f}")
    print(
        f"target for 'large' (10M in 15 min): {TARGET_DECLARATIONS_PER_S:,.0f} declarations/s; "
        f"ratio ours/target: {decl_rate / TARGET_DECLARATIONS_PER_S:.2f}"
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory (max RSS): main process {own:,.0f} MB, largest worker {workers:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
