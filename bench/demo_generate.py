"""Demo-world generation speed: records per second per feed, total time, peak memory, and the
projected time of the `large` world.

    python bench/demo_generate.py [--scale small] [--seed 1] [--workers N] [--quick] [--out DIR]
    python bench/demo_generate.py --scale large --fraction 50   # large-shaped sample, 1/50 of the feeds

Per-feed rates are units per CPU second (summed over the processes that ran the feed's jobs), so
they hold on a shared machine where wall time depends on what else runs. The `large` projection
scales each feed's CPU seconds by its own unit count (entities by companies + persons, security
logs by events) and spreads them over the workers, as generation does.

Anchors (measured in the same run): Arrow's CSV writer alone writing as many rows of the same
declaration columns from ready-made arrays (the I/O floor any generator pays), and the rate the
issue's target implies (10M declarations in 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sciti.demo import generate, load_scale, plan
from sciti.demo.config import Scale
from sciti.demo.decl_feeds import HEADER

TARGET_SECONDS = 15 * 60
# Counts that --fraction divides (the entity tables keep their full size: their cost and memory do
# not shrink with the feeds, and chunk costs depend on them).
FEED_COUNTS = (
    "declarations",
    "road_cargo",
    "elock_trips",
    "passengers",
    "currency_declarations",
    "intel_reports",
    "security_events",
)
TARGET_DECLARATIONS_PER_S = 10_000_000 / TARGET_SECONDS


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
    start = time.process_time()
    with pacsv.CSVWriter(str(out), HEADER) as w:
        for _ in range(max(1, rows // n)):
            w.write_table(table)
    return max(1, rows // n) * n / (time.process_time() - start)


def units(scale: Scale) -> dict[str, float]:
    """What each feed's cost grows with."""
    u: dict[str, float] = {k: float(v) for k, v in plan(scale).items()}
    u["entities"] = u["setup"] = float(scale.companies + scale.persons)
    u["seclogs"] = float(scale.security_events)
    return u


def project(
    cpu: dict[str, float], ran: Scale, ran_workers: int, target: Scale, workers: int
) -> tuple[float, float]:
    """(CPU seconds, wall seconds on ``workers`` dedicated cores) of ``target`` from a run of ``ran``.

    Every process builds the entities once ("setup", in parallel); the jobs share the cores.
    """
    have, want = units(ran), units(target)
    scaled = {f: s * want[f] / have[f] for f, s in cpu.items() if have.get(f)}
    setup = scaled.pop("setup", 0.0) / max(1, ran_workers)  # one process's world build
    work = sum(scaled.values())
    return work + setup * workers, setup + work / max(1, workers)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny world (smoke run, not a measurement)")
    ap.add_argument("--workers", type=int, default=1, help="processes generating chunks")
    ap.add_argument("--out", type=Path, help="keep the world in this folder (default: a temporary one)")
    ap.add_argument("--fraction", type=int, default=1, help="generate 1/F of each feed, full-size entities")
    args = ap.parse_args()
    scale = load_scale("tiny" if args.quick else args.scale)
    if args.fraction > 1:
        scale = load_scale(
            scale.name, {k: max(1, int(scale.params[k]) // args.fraction) for k in FEED_COUNTS}
        )
    tmp = Path(tempfile.mkdtemp(prefix="sciti-demo-bench-"))
    try:
        out = args.out or tmp / "world"
        t0 = time.perf_counter()
        report = generate(out, scale, args.seed, workers=args.workers, overwrite=args.out is not None)
        wall = time.perf_counter() - t0
        anchor = anchor_rows_per_s(int(scale.declarations), tmp / "anchor.csv")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu, todo = report.cpu_seconds, plan(scale)
    part = f" (1/{args.fraction} of its feeds)" if args.fraction > 1 else ""
    print(
        f"demo world '{scale.name}'{part}, seed {args.seed}, {args.workers} worker(s):"
        f" {wall:.1f} s wall in all"
    )
    print("(CPU seconds per feed, summed over processes; the machine may be shared, wall time is not)")
    print(f"{'feed':<14}{'units':>12}{'CPU s':>10}{'units/CPU s':>14}")
    for feed, secs in cpu.items():
        n = todo.get(feed, 0)
        rate = f"{n / secs:>14,.0f}" if secs and n else f"{'':>14}"
        print(f"{feed:<14}{n:>12,}{secs:>10.2f}{rate}")
    rows = sum(v for k, v in report.counts.items() if "/" in k)
    print(f"{'all files':<14}{rows:>12,} rows/lines, {sum(cpu.values()):.1f} CPU s")
    decl_rate = todo["declarations"] / cpu["declarations"]
    print(f"ours:   {decl_rate:,.0f} declarations/CPU s (items, parties, XML, CUSCAR, inspections, truth)")
    print(f"anchor: {anchor:,.0f} rows/CPU s, Arrow CSV writer alone on the same header columns")
    print(f"ratio ours/anchor: {decl_rate / anchor:.3f}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    bound = own + args.workers * child if args.workers > 1 else own
    print(
        f"peak memory (max RSS): main {own:,.0f} MB, largest worker {child:,.0f} MB,"
        f" all processes at most {bound:,.0f} MB"
    )
    large = load_scale("large")
    for w in sorted({2, args.workers}):
        total_cpu, est = project(cpu, scale, args.workers, large, w)
        print(
            f"'large' projected from this run: {total_cpu / 60:,.1f} CPU min, about {est / 60:,.1f} min on"
            f" {w} dedicated cores (target {TARGET_SECONDS / 60:.0f} min; ratio target/projected"
            f" {TARGET_SECONDS / est:.2f})"
        )
    print(f"target rate for 'large': {TARGET_DECLARATIONS_PER_S:,.0f} declarations/s end to end, all feeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
