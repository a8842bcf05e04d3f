"""Benchmark: re-submitting quarantine entries in bulk, time per entry (decision 0117).

A fresh embedded instance (or ``--db URL``, a PostgreSQL database for the catalog and operational
tables) whose HS code list lacks ``392690``; real KCS rows with that code (../shared/data/kcs) are
ingested as one file, so each lands in quarantine. The code list is then corrected and every entry
re-submitted as it was (``resubmit_selection``): entries of one file go as one batch (decision
0120), through the whole KCS connector (three tables written). Prints the time per entry and what
one API call (``CALL_DEFAULT`` entries, none started after ``CALL_SECONDS``) therefore takes.
Anchor: the same rows ingested as one file.

    .venv/bin/python bench/quarantine_resubmit.py [--entries 300] [--db URL] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import time
from pathlib import Path

from sciti.acquire import Runner, list_quarantine, load_connector
from sciti.acquire.quarantine_bulk import Selection
from sciti.acquire.quarantine_resubmit import CALL_DEFAULT, CALL_SECONDS, resubmit_selection
from sciti.acquire.validation import codelists
from sciti.model.codelists import _load
from sciti.ops import migrate
from sciti.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "quarantine-resubmit"
SHARED = ROOT.parent / "shared" / "data"
MISSING = "392690"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--db", help="a PostgreSQL URL for the catalog and operational tables")
    parser.add_argument("--quick", action="store_true", help="50 entries: a smoke run")
    args = parser.parse_args()
    n = 50 if args.quick else args.entries

    shutil.rmtree(OUT, ignore_errors=True)
    lists, home = OUT / "codelists", OUT / "instance"
    shutil.copytree(SHARED / "codelists", lists)
    home.mkdir()
    hs = lists / "hs" / "harmonized-system.csv"
    with hs.open(encoding="utf-8", newline="") as fh:
        kept = [r for r in csv.reader(fh) if r[1] != MISSING]
    with hs.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(kept)
    db = {"catalog_uri": args.db, "ops_db_url": args.db} if args.db else {}
    settings = Settings(home=home, connectors_dir=ROOT / "connectors", codelists_dir=lists, **db)
    migrate(settings.resolved_ops_db_url)

    lines = (SHARED / "kcs" / "train.csv").read_text("utf-8").splitlines()
    rows = [r for r in lines[1:] if r.split(",")[12] == MISSING][:n]
    data = ("\n".join([lines[0], *rows]) + "\n").encode()
    started = time.perf_counter()
    result = Runner(settings).ingest_bytes(load_connector(settings, "kcs"), data, "kcs-late.csv")
    anchor = time.perf_counter() - started
    assert result.quarantined == len(rows), result
    print(f"input: {len(rows)} KCS rows with HS {MISSING}, quarantined as {result.quarantined} entries")
    print(f"anchor  one file of {len(rows)} rows ingested: {anchor:8.2f} s")

    shutil.copyfile(SHARED / "codelists" / "hs" / "harmonized-system.csv", hs)  # the fix
    codelists.cache_clear()
    _load.cache_clear()
    started = time.perf_counter()
    done = resubmit_selection(settings, Selection(connector="kcs"), "bench")
    seconds = time.perf_counter() - started
    assert (done.resubmitted, done.stored, done.still_open) == (len(rows), len(rows), 0), done
    assert not list_quarantine(settings, status="open")
    per = seconds / done.resubmitted
    print(
        f"ours    {done.resubmitted} entries re-submitted: {seconds:8.2f} s  {per * 1000:6.0f} ms/entry  "
        f"(cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})"
    )
    print(
        f"one API call of {CALL_DEFAULT} entries: {CALL_DEFAULT * per:5.1f} s (none started after "
        f"{CALL_SECONDS:.0f} s; goal: well under a minute)"
    )


if __name__ == "__main__":
    main()
