"""Benchmark: disk a real-time lake table holds over upkeep passes, with and without file clean-up.

A feed appends small batches of the ``declaration`` record kind, as a transport or the risk
flusher does every few seconds; after each round of appends an upkeep pass runs. Ours:
``Lake.maintain`` (compaction, expiry, removal of the files only expired snapshots used and of old
orphans). Anchor, on a second lake fed the same rows in the same run: the same compaction and
expiry without the clean-up (what Iceberg's expiry alone does, and what SCITI did before). Prints
per round the size of the live data, the seconds upkeep took and the size of each warehouse, and
at the end the ratio.

    .venv/bin/python bench/lake_upkeep.py [--rounds 4] [--appends 150] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lake_commit import batch, disk  # noqa: E402  (the same rows and the same measure)

from sciti.lake import Lake
from sciti.lake import writes as lake_writes
from sciti.lake.files import snapshot_files
from sciti.model.schema import get_kind

KEEP_LAST = 50  # as if the last hour were the newest 50 commits (upkeep's keep_last default)


def live(lake: Lake, ident: str) -> int:
    """Bytes of the data files the current snapshot reads: the least any warehouse must hold."""
    table = lake.table(ident)
    return sum(t.file.file_size_in_bytes for t in snapshot_files(table, table.current_snapshot()).tasks)


def open_lake(root: Path, ident: str, schema: pa.Schema) -> Lake:
    lake = Lake(f"sqlite:///{root}/catalog.db", f"file://{root}/warehouse")
    lake.ensure_zones()
    lake.ensure_table(ident, schema)
    return lake


def expire_only(lake: Lake, ident: str) -> None:
    """The anchor's pass: compaction and expiry as ours, files left on disk."""
    lake.compact(ident)
    lake_writes.expire(lake.table(ident), datetime.now(UTC), KEEP_LAST)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--appends", type=int, default=150, help="appends between upkeep passes")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.appends = 2, 60
    kind = get_kind("declaration")
    schema = kind.arrow_schema()
    ours_root = Path(tempfile.mkdtemp(prefix="sciti-bench-"))
    anchor_root = Path(tempfile.mkdtemp(prefix="sciti-bench-"))
    ours = open_lake(ours_root, kind.ident, schema)
    anchor = open_lake(anchor_root, kind.ident, schema)
    print(
        f"{'round':>5} {'commits':>7} {'live MB':>7} {'ours s':>7} {'ours MB':>8}"
        f" {'anchor s':>8} {'anchor MB':>9}"
    )
    n = 0
    for round_ in range(1, args.rounds + 1):
        for _ in range(args.appends):
            rows = batch(schema, n, rows=20)
            ours.append(kind.ident, rows, batch_id=f"b{n}")
            anchor.append(kind.ident, rows, batch_id=f"b{n}")
            n += 1
        t0 = time.perf_counter()
        result = ours.maintain(kind.ident, keep_days=0, keep_last=KEEP_LAST, keep_all_hours=0)
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        expire_only(anchor, kind.ident)
        anchor_s = time.perf_counter() - t0
        ours_mb, anchor_mb = disk(ours_root / "warehouse") / 1e6, disk(anchor_root / "warehouse") / 1e6
        print(
            f"{round_:>5} {n:>7} {live(ours, kind.ident) / 1e6:>7.1f} {ours_s:>7.2f} {ours_mb:>8.1f}"
            f" {anchor_s:>8.2f} {anchor_mb:>9.1f}"
            f"   (ours removed {result.removed.files} files, {result.removed.bytes / 1e6:.1f} MB)",
            flush=True,
        )
    print(
        f"after {n} commits: ours {ours_mb:.1f} MB, anchor {anchor_mb:.1f} MB on disk; "
        f"anchor/ours {anchor_mb / ours_mb:.1f}x"
    )


if __name__ == "__main__":
    main()
