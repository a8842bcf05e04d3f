"""Run every benchmark in turn (`make bench`). Each prints its own figures, anchor and ratio.

Pass `--quick` to run each at a reduced size (a smoke run, not a measurement).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    "ingest_csv",
    "parse_wco",
    "parse_edifact",
    "query_groupby",
    "lake_commit",
    "lake_upkeep",
    "model_validate",
    "demo_generate",
    "rule_dryrun",
    "risk_batch",
    "risk_assess_http",
    "background_latency",
    "authz_overhead",
    "login",
    "web_pages",
    "quarantine_resubmit",
    "small_units",
]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    for name in BENCHES:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: not present, skipped")
            continue
        print(f"\n== {name}", flush=True)
        smoke = quick and "--quick" in script.read_text(encoding="utf-8")  # not every bench has a smoke size
        args = [sys.executable, str(script)] + (["--quick"] if smoke else [])
        if subprocess.call(args) != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
