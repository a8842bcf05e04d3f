"""Benchmark: cost of one Iceberg commit (``Lake.append``) as a table's snapshots accumulate.

Ours: ``Lake.append`` (cached table, one metadata build per change, snapshot entries shared between
metadata versions, the commit starting from the table held). Anchor, in the same run and on the
same table: stock pyiceberg, ``SqlCatalog.load_table(ident).append(rows)``, its entries
deep-copied and the metadata file read again at commit, as it does by itself. Both append the same
3-row batches of the ``declaration`` record kind to a SQLite-catalog lake. Prints seconds per
append at each snapshot count, the ratio anchor/ours, then what ``Lake.maintain`` took and gave
back on disk (the files only expired snapshots used), and the cost of an append after it.

At each count it also plans the current snapshot's files, as every read, upsert and stored-record
check does: ours (``lake.files.snapshot_files``, each manifest read once per process) against
pyiceberg's planner (``table.scan().plan_files()``), both just after the timed appends (ours
had planned the table after each of its earlier appends, as the next batch's check does).

    .venv/bin/python bench/lake_commit.py [--at 10 100 500] [--n 5] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from sciti.lake import Lake
from sciti.lake.files import snapshot_files
from sciti.lake.shared_entries import SHARED, share_entries
from sciti.model.schema import get_kind


def batch(schema: pa.Schema, i: int, rows: int = 3) -> pa.Table:
    text = [f"v{i}-{r}" for r in range(rows)]
    cols = [pa.array(text, f.type) if pa.types.is_string(f.type) else pa.nulls(rows, f.type) for f in schema]
    cols[schema.get_field_index("batch_id")] = pa.array([f"b{i}"] * rows, pa.string())
    return pa.Table.from_arrays(cols, schema=schema)


def disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@contextmanager
def stock_pyiceberg() -> Iterator[None]:
    """pyiceberg as it comes: its snapshot entries deep-copied, not shared (decision 0123)."""
    for cls in SHARED:
        del cls.__deepcopy__
    try:
        yield
    finally:
        share_entries()


def per_append(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--n", type=int, default=5, help="appends timed at each point")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.at, args.n = [10, 50], 2
    kind = get_kind("declaration")
    schema = kind.arrow_schema()
    root = Path(tempfile.mkdtemp(prefix="sciti-bench-"))
    lake = Lake(f"sqlite:///{root}/catalog.db", f"file://{root}/warehouse")
    lake.ensure_zones()
    lake.ensure_table(kind.ident, schema)
    # The anchor's own catalog on the same database: stock pyiceberg, which re-reads the metadata
    # file at every commit (ours starts from the table it holds, decision 0125).
    stock = SqlCatalog("sciti", uri=lake.catalog_uri, warehouse=lake.warehouse)
    counter = iter(range(10**9))

    def ours() -> None:
        i = next(counter)
        lake.append(kind.ident, batch(schema, i), batch_id=f"b{i}")

    def anchor() -> None:
        i = next(counter)
        with stock_pyiceberg():
            stock.load_table(kind.ident).append(batch(schema, i), snapshot_properties={"b": str(i)})

    def plan() -> tuple[float, float]:
        table = lake.table(kind.ident)
        t0 = time.perf_counter()
        mine = snapshot_files(table, table.current_snapshot()).paths
        t1 = time.perf_counter()
        theirs = [t.file.file_path for t in table.scan().plan_files()]
        t2 = time.perf_counter()
        assert mine == theirs, "the two planners disagree"
        return t1 - t0, t2 - t1

    print(
        f"{'snapshots':>9} {'ours s/append':>14} {'pyiceberg s/append':>19} {'ratio':>6}   "
        f"{'ours plan ms':>12} {'pyiceberg plan ms':>18} {'ratio':>6}"
    )
    for target in args.at:
        while len(lake.table(kind.ident).metadata.snapshots) < target:
            ours()
            table = lake.table(kind.ident)
            snapshot_files(table, table.current_snapshot())  # as the next batch's stored-record check
        a = per_append(anchor, args.n)
        o = per_append(ours, args.n)
        po, pa_ = plan()
        print(
            f"{target:>9} {o:>14.3f} {a:>19.3f} {a / o:>6.1f}   {po * 1000:>12.1f} {pa_ * 1000:>18.1f} "
            f"{pa_ / po:>6.1f}",
            flush=True,
        )
    folder = root / "warehouse"
    size_before = disk(folder)
    t0 = time.perf_counter()
    result = lake.maintain(kind.ident, keep_days=0, keep_last=50)
    took = time.perf_counter() - t0
    print(
        f"maintain took {took:.2f} s: removed {result.removed.files} files only expired snapshots used "
        f"({result.removed.bytes / 1e6:.1f} MB); warehouse {size_before / 1e6:.1f} MB -> "
        f"{disk(folder) / 1e6:.1f} MB"
    )
    o = per_append(ours, args.n)
    a = per_append(anchor, args.n)
    print(
        f"after maintain (expired {result.expired}, {result.snapshots_left} left, "
        f"{result.compact.files_before}->{result.compact.files_after} files): "
        f"ours {o:.3f} s/append, pyiceberg {a:.3f} s/append, ratio {a / o:.1f}"
    )
    t0 = time.perf_counter()
    found = lake.has_batch(kind.ident, "b1")
    print(f"has_batch of an expired batch: {found} in {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
