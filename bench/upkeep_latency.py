"""Benchmark: real-time assessment latency while the server's lake upkeep pass runs.

The instance of bench/risk_assess_http.py (KCS declarations, 20 approved rules, the champion
model) serves ``POST /api/v1/risk/assess`` to 32 clients paced at 100 requests/s in total (latency
counted from when each request was due). A real-time table gets ``--appends`` small commits first,
as an hour of a 5-second feed leaves; then, once the load is running, the server's upkeep pass
starts, with the instance's settings (every snapshot older than now expirable; retention off).

- ours: upkeep in the background jobs process (``sciti.background.BackgroundJobs``, as
  ``sciti serve`` runs it);
- anchor: the same ``LakeUpkeep`` on a thread of the API process, as SCITI ran it before;
- quiet: no pass at all, for scale.

Prints p50/p95/p99/max latency of each run, the time from the pass being due to its end, and the
ratios anchor/ours.

Run: .venv/bin/python bench/upkeep_latency.py [--appends 600] [--seconds 45] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lake_commit import batch  # noqa: E402
from risk_assess_http import free_port, payloads, phase, setup, start_engine, start_server  # noqa: E402

RATE = 100.0
CLIENTS = 32
# Runs in the server process (see risk_assess_http.SERVER): once the bench creates GO, start the
# upkeep the way MODE says, then write to DONE how long after that the pass ended.
UPKEEP = """
import pathlib, threading, time
from prometheus_client import REGISTRY
from sciti.background import BackgroundJobs, jobs


def _upkeep():
    go = pathlib.Path({go!r})
    while not go.exists():
        time.sleep(0.02)
    due = time.time()
    if {mode!r} == "thread":
        jobs(get_settings(), first_delay=0.0)[0].start()
    else:
        BackgroundJobs(get_settings(), first_delay=0.0).start()
    while not REGISTRY.get_sample_value("sciti_lake_upkeep_last_pass_seconds"):
        time.sleep(0.02)
    pathlib.Path({done!r}).write_text(str(time.time() - due))


threading.Thread(target=_upkeep, daemon=True).start()
"""


def history(settings, ident: str, appends: int) -> None:
    """``appends`` small commits to a fresh real-time table, after a pass over all the others, so
    each run's pass has the same work: this table."""
    from sciti.lake import open_lake
    from sciti.lake.upkeep import UpkeepPolicy, upkeep_pass
    from sciti.model.schema import get_kind

    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    upkeep_pass(lake, UpkeepPolicy(keep_days=0, keep_all_hours=0), report=lambda event: None)
    schema = get_kind("declaration").arrow_schema()
    lake.ensure_table(ident, schema)
    for i in range(appends):
        lake.append(ident, batch(schema, i, rows=20), batch_id=f"{ident}-{i}")


def run(
    settings, token: str, bodies: Path, seconds: float, mode: str, work: Path
) -> tuple[dict, float | None]:
    go, done = work / f"go-{mode}", work / f"done-{mode}"
    extra = "" if mode == "quiet" else UPKEEP.format(go=str(go), done=str(done), mode=mode)
    port = free_port()
    server = start_server(settings, port, extra=extra)
    try:
        start_engine(settings, port, token, payloads(settings, 1)[0])
        go.touch()
        result = phase(port, token, bodies, CLIENTS, seconds, RATE, server.pid)
        deadline = time.monotonic() + 600
        while mode != "quiet" and not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=120)
    return result, float(done.read_text()) if done.exists() else None


def show(label: str, r: dict, took: float | None, seconds: float) -> None:
    within = "" if took is None else f"; the pass ended {took:.1f} s after it was due"
    if took is not None and took > seconds:
        within += " (after the load ended)"
    print(
        f"{label:<7} p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  p99 {r['p99']:6.1f}  max {r['max']:6.1f} ms"
        f"  ({r['n']:,} answers, {r['errors']} errors){within}"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=600, help="commits to a real-time table before a pass")
    ap.add_argument("--seconds", type=float, default=45.0, help="load per run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 150 appends, 20 s")
    args = ap.parse_args()
    if args.quick:
        args.appends, args.seconds = 150, 20.0
    # What the server reads from its environment: a pass may expire everything but the newest 50
    # snapshots (as an hour later), and retention stays out of the picture.
    for name in ("LAKE_KEEP_DAYS", "LAKE_KEEP_ALL_HOURS", "RETENTION_EVERY_HOURS"):
        os.environ[f"SCITI_{name}"] = "0"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings, token = setup(work / "instance")
        bodies = work / "bodies.json"
        bodies.write_text(json.dumps([b.decode() for b in payloads(settings, 2000)]))
        for mode in ("quiet", "thread", "child"):
            if mode != "quiet":
                history(settings, f"raw.feed_{mode}", args.appends)
            results[mode] = run(settings, token, bodies, args.seconds, mode, work)
            print(f"        {mode} run done", flush=True)
    print(
        f"POST /api/v1/risk/assess, {CLIENTS} clients paced at {RATE:.0f}/s for {args.seconds:.0f} s; "
        f"an upkeep pass over a table of {args.appends} commits starts as the load does"
    )
    (ours, ours_took), (anchor, anchor_took) = results["child"], results["thread"]
    show("ours", ours, ours_took, args.seconds)
    print("        (upkeep in the background jobs process, as `sciti serve` runs it)")
    show("anchor", anchor, anchor_took, args.seconds)
    print("        (the same upkeep on a thread of the API process, as before)")
    show("quiet", results["quiet"][0], None, args.seconds)
    print(
        f"ratio   anchor/ours: p99 {anchor['p99'] / ours['p99']:.1f}x, "
        f"max {anchor['max'] / ours['max']:.1f}x; "
        f"ours/quiet p99 {ours['p99'] / results['quiet'][0]['p99']:.2f}"
    )
    print(f"        (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
