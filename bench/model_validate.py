"""Benchmark: vectorised validation of a 20-column table (sciti.model.validate_table).

Anchor, measured in the same run on the same Arrow table: DuckDB (one thread) doing only the
type casts with TRY_CAST and the code-list lookups as IN lists — no required checks, HS rules,
identifiers or reasons. Prints rows per CPU-second for both (one thread each, best of three)
and the ratio (ours / anchor).

Run: .venv/bin/python bench/bench_model_validate.py [ROWS]   (default 1,000,000)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from sciti.model import get_kind, load_codelists, validate_table

ROOT = Path(__file__).resolve().parents[1]
CODELISTS = ROOT.parent / "shared" / "data" / "codelists"
KIND = "declaration"


def make_table(rows: int, bad_share: float = 0.0) -> pa.Table:
    """Synthetic declarations, the first 20 fields of the kind, as text (as a CSV reader yields them)."""
    rng = random.Random(7)
    kind = get_kind(KIND)
    block = 1000
    cols = {}
    for f in kind.fields[:20]:
        if f.type == "int":
            v = [str(rng.randint(1, 9)) for _ in range(block)]
        elif f.type in ("float", "decimal"):
            v = [f"{rng.random() * 1e6:.2f}" for _ in range(block)]
        elif f.type == "date":
            v = [f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(block)]
        elif f.type == "timestamp":
            v = [
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:15:00Z"
                for _ in range(block)
            ]
        elif f.codelist == "country":
            v = [rng.choice(["CN", "KR", "US", "DE", "JP", "VN"]) for _ in range(block)]
        elif f.codelist == "unlocode":
            v = [rng.choice(["CNSHA", "KRPUS", "USLAX", "DEHAM"]) for _ in range(block)]
        else:
            v = [f"{f.name[:3].upper()}{rng.randint(0, 10**7)}" for _ in range(block)]
        if bad_share:
            for i in range(0, block, int(1 / bad_share)):
                v[i] = "??"
        cols[f.name] = pa.array(v * (rows // block))
    return pa.table(cols)


def anchor_sql(table: pa.Table) -> str:
    kind = get_kind(KIND)
    duck = {
        "int": "BIGINT",
        "float": "DOUBLE",
        "decimal": "DECIMAL(18,4)",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
    }
    cl = load_codelists(CODELISTS)
    parts = []
    for name in table.column_names:
        f = kind.field(name)
        col = f"trim({name})"
        if f.type != "string":
            parts.append(f"TRY_CAST({col} AS {duck[f.type]}) AS {name}")
        elif f.codelist in ("country", "unlocode"):
            codes = sorted(cl.country if f.codelist == "country" else cl.unlocode)
            listed = ", ".join(f"'{c}'" for c in codes)
            expr = col if f.codelist == "country" else f"left({col}, 2)"
            parts.append(f"{expr} IN ({listed}) AS {name}_ok, {col} AS {name}")
        else:
            parts.append(f"nullif({col}, '') AS {name}")
    return "SELECT " + ", ".join(parts) + " FROM t"


def best_of(fn, repeat: int = 3) -> float:
    """Best CPU time of a few runs: the machine is shared, and CPU time is what one core spends."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    codelists = load_codelists(CODELISTS)
    kind = get_kind(KIND)
    pa.set_cpu_count(1)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    for label, share in (("clean", 0.0), ("0.1% bad values", 0.001)):
        table = make_table(rows, share)
        con.register("t", table)
        sql = anchor_sql(table)
        ours = best_of(lambda table=table: validate_table(kind, table, codelists))
        anchor = best_of(lambda sql=sql: con.execute(sql).to_arrow_table())
        print(
            f"{label:16s} sciti validate_table: {rows / ours:12,.0f} rows/cpu-s | "
            f"anchor DuckDB TRY_CAST (1 thread): {rows / anchor:12,.0f} rows/cpu-s | "
            f"ratio {anchor / ours:.2f}x"
        )
        con.unregister("t")


if __name__ == "__main__":
    main()
