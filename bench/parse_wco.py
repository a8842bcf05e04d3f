"""WCO DEC XML: declarations per second through the reader (parse + XSD validation + mapping).

Goal (issue 2): at least 2,000 declarations per second on 2 cores. The samples are the 130 valid
real declarations in ../shared/data/wco/samples, held in memory and read repeatedly, so the figure
is the reader's own cost (no disk, no lake). Printed in the same run, for scale:

- lxml parse only (libxml2's floor for the same bytes: we cannot be faster than this);
- our reader on one core, then on 2 worker processes (the goal's "2 cores");
- the ratio of our 2-process figure to the 2,000/s goal.

The machine may be shared (other processes compete for the cores), so each figure is given twice:
by wall clock, and by CPU time actually spent in our processes (what dedicated cores would do).
The 2-process CPU figure is declarations / the larger worker CPU time (workers run side by side).

Usage: python bench/parse_wco.py [--passes N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

from harness import report_two, timed, two_processes
from lxml import etree

from sciti.acquire.formats.wco_xml import _parser, load_schema, read
from sciti.acquire.items import Parsed
from sciti.settings import Settings

GOAL_PER_SECOND = 2_000
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCITI_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()

_ctx: types.SimpleNamespace | None = None
_docs: list[bytes] = []


def make_ctx() -> types.SimpleNamespace:
    return types.SimpleNamespace(settings=Settings(wco_schema_dir=SHARED / "wco" / "schemas"))


def valid_samples(ctx: types.SimpleNamespace) -> list[bytes]:
    """The samples the reader maps (declarations), as bytes."""
    folder = SHARED / "wco" / "samples"
    docs = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        if all(isinstance(r, Parsed) for r in read(data, unit=path.name, options={}, ctx=ctx)):
            docs.append(data)
    return docs


def run_passes(docs: list[bytes], ctx: types.SimpleNamespace, passes: int) -> int:
    count = 0
    for _ in range(passes):
        for data in docs:
            for result in read(data, unit="bench.xml", options={}, ctx=ctx):
                if not isinstance(result, Parsed):
                    raise SystemExit(f"unexpected rejection: {result.reason}")
                count += 1
    return count


def parse_only(docs: list[bytes], passes: int) -> int:
    parser = _parser()
    for _ in range(passes):
        for data in docs:
            etree.fromstring(data, parser)
    return passes * len(docs)


def _init_worker(docs: list[bytes]) -> None:
    global _ctx, _docs
    _ctx, _docs = make_ctx(), docs
    load_schema(_ctx.settings.wco_schema_dir)  # compile before the clock matters


def _worker(passes: int) -> tuple[int, float]:
    assert _ctx is not None
    start = time.process_time()
    n = run_passes(_docs, _ctx, passes)
    return n, time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=20, help="passes over the samples (default 20)")
    ap.add_argument("--quick", action="store_true", help="2 passes: a smoke run, not a measurement")
    args = ap.parse_args()
    passes = 2 if args.quick else args.passes

    ctx = make_ctx()
    start = time.perf_counter()
    load_schema(ctx.settings.wco_schema_dir)
    compile_s = time.perf_counter() - start
    docs = valid_samples(ctx)
    size = sum(map(len, docs))
    print(
        f"samples: {len(docs)} valid declarations, {size / len(docs) / 1024:.1f} KiB on average; "
        f"{passes} passes; schema compiled in {compile_s * 1000:.0f} ms (once per process)"
    )

    n, wall, cpu = timed(parse_only, docs, passes)
    floor = n / cpu
    print(f"anchor  lxml parse only, 1 core     : {n / wall:9,.0f} /s wall  {floor:9,.0f} /s CPU")

    n, wall, cpu = timed(run_passes, docs, ctx, passes)
    one = n / cpu
    print(
        f"ours    parse+validate+map, 1 core  : {n / wall:9,.0f} /s wall  {one:9,.0f} /s CPU"
        f"  ({one / floor:.2f}x parse-only)"
    )

    wall_rate, cpu_rate = two_processes(_init_worker, (docs,), _worker, passes)
    report_two("parse+validate+map", "declarations", GOAL_PER_SECOND, wall_rate, cpu_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
