"""Benchmark: real-time assessment latency while the server's background work runs.

The instance of bench/risk_assess_http.py (KCS declarations, 20 approved rules, the champion
model) serves ``POST /api/v1/risk/assess`` to 32 clients paced at 100 requests/s in total (latency
counted from when each request was due). Meanwhile, in two scenarios:

- **upkeep**: a real-time table first gets ``--appends`` small commits, as an hour of a 5-second
  feed leaves; as the load starts, the server's upkeep pass starts (every snapshot older than now
  expirable, as an hour later);
- **feed**: the e-lock platform publishes ``--feed-rate`` GPS fixes a second on the MQTT broker
  (127.0.0.1:1883), which the ``demo-elock-mqtt`` connector's transport ingests into the lake.

Each runs twice. Ours: in the background jobs process (``sciti.background.BackgroundJobs``, as
``sciti serve`` runs it). Anchor: on threads of the API process, as SCITI ran them before (the
same ``LakeUpkeep``; the same ``start_all`` of the transports). A quiet run, with neither, gives
the scale. Prints p50/p95/p99/max latency per run, the API process's CPU per answer, and the ratios
anchor/ours.

Run: .venv/bin/python bench/background_latency.py [--appends 600] [--feed-rate 200] [--seconds 45]
     [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lake_commit import batch  # noqa: E402
from risk_assess_http import free_port, payloads, phase, setup, start_engine, start_server  # noqa: E402

RATE = 100.0
CLIENTS = 32
# Runs in the server process (see risk_assess_http.SERVER) once the bench creates GO. "thread":
# upkeep on a thread of this process; "transports": the transports on threads of this process;
# "child": the background jobs process. Then writes to DONE how long the upkeep pass took from GO.
BACKGROUND = """
import pathlib, threading, time
from prometheus_client import REGISTRY
from sciti.acquire.transports import start_all
from sciti.background import BackgroundJobs, jobs


def _background():
    go = pathlib.Path({go!r})
    while not go.exists():
        time.sleep(0.02)
    due = time.time()
    if {mode!r} == "thread":
        jobs(get_settings(), first_delay=0.0)[0].start()
    elif {mode!r} == "transports":
        start_all(get_settings())
        return
    else:
        BackgroundJobs(get_settings(), first_delay={first_delay}).start()
    while not REGISTRY.get_sample_value("sciti_lake_upkeep_last_pass_seconds"):
        time.sleep(0.02)
    pathlib.Path({done!r}).write_text(str(time.time() - due))


threading.Thread(target=_background, daemon=True).start()
"""


def history(settings, ident: str, appends: int) -> None:
    """``appends`` small commits to a fresh real-time table, after a pass over all the others, so
    each upkeep run has the same work: this table."""
    from sciti.lake import open_lake
    from sciti.lake.upkeep import UpkeepPolicy, upkeep_pass
    from sciti.model.schema import get_kind

    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    upkeep_pass(lake, UpkeepPolicy(keep_days=0, keep_all_hours=0), report=lambda event: None)
    schema = get_kind("declaration").arrow_schema()
    lake.ensure_table(ident, schema)
    for i in range(appends):
        lake.append(ident, batch(schema, i, rows=20), batch_id=f"{ident}-{i}")


def publish(rate: float, stop: threading.Event, sent: list[int]) -> None:
    """The e-lock platform: GPS fixes on elock/<lock>/gps, QoS 1, ``rate`` a second until ``stop``."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-elock-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    start, n = time.perf_counter(), 0
    while not stop.is_set():
        lock = f"EL{n % 50:04d}"
        fix = {"msg_id": uuid.uuid4().hex, "kind": "gps", "elock_id": lock, "trip_id": f"T-{lock}",
               "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "lat": 22.3, "lon": 114.1,
               "speed_kmh": 52.0, "battery_pct": 88}  # fmt: skip
        client.publish(f"elock/{lock}/gps", json.dumps(fix), qos=1)
        n += 1
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    client.loop_stop()
    client.disconnect()
    sent.append(n)


def run(settings, token: str, bodies: Path, seconds: float, mode: str, work: Path, feed_rate: float = 0.0):
    """One server, one measured load; returns (load stats, upkeep pass seconds or None, fixes sent)."""
    name = f"{mode}-{'feed' if feed_rate else 'upkeep'}"
    go, done = work / f"go-{name}", work / f"done-{name}"
    first_delay = 3600.0 if feed_rate else 0.0  # the feed scenario: no upkeep pass during the load
    extra = (
        ""
        if mode == "quiet"
        else BACKGROUND.format(go=str(go), done=str(done), mode=mode, first_delay=first_delay)
    )
    port = free_port()
    server = start_server(settings, port, extra=extra)
    stop, sent = threading.Event(), []
    feeder = threading.Thread(target=publish, args=(feed_rate, stop, sent)) if feed_rate else None
    try:
        start_engine(settings, port, token, payloads(settings, 1)[0])
        go.touch()
        if feeder:
            time.sleep(5)  # the transport subscribed (the child has started)
            feeder.start()
        result = phase(port, token, bodies, CLIENTS, seconds, RATE, server.pid)
        stop.set()
        if feeder:
            feeder.join()
        deadline = time.monotonic() + 600
        while not feed_rate and mode != "quiet" and not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        helpers = psutil.Process(server.pid).children(recursive=True)
        server.terminate()
        server.wait(timeout=120)
        psutil.wait_procs(helpers, timeout=120)  # they stop once the server is gone
    return result, float(done.read_text()) if done.exists() else None, sum(sent)


def show(label: str, r: dict, note: str = "") -> None:
    print(
        f"{label:<7} p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  p99 {r['p99']:6.1f}  max {r['max']:6.1f} ms"
        f"  API CPU/answer {r['api_cpu_ms']:.2f} ms  ({r['n']:,} answers, {r['errors']} errors){note}"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=600, help="commits to a real-time table before a pass")
    ap.add_argument("--feed-rate", type=float, default=200.0, help="MQTT messages a second in the feed runs")
    ap.add_argument("--seconds", type=float, default=45.0, help="load per run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 150 appends, 20 s")
    args = ap.parse_args()
    if args.quick:
        args.appends, args.seconds = 150, 20.0
    # What the server reads from its environment: a pass may expire everything but the newest 50
    # snapshots (as an hour later), and retention stays out of the picture.
    for name in ("LAKE_KEEP_DAYS", "LAKE_KEEP_ALL_HOURS", "RETENTION_EVERY_HOURS"):
        os.environ[f"SCITI_{name}"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings, token = setup(work / "instance")
        bodies = work / "bodies.json"
        bodies.write_text(json.dumps([b.decode() for b in payloads(settings, 2000)]))
        quiet = run(settings, token, bodies, args.seconds, "quiet", work)[0]
        upkeep = {}
        for mode in ("thread", "child"):
            history(settings, f"raw.feed_{mode}", args.appends)
            upkeep[mode] = run(settings, token, bodies, args.seconds, mode, work)
        feed = {
            m: run(settings, token, bodies, args.seconds, m, work, args.feed_rate)
            for m in ("transports", "child")
        }
    print(
        f"POST /api/v1/risk/assess, {CLIENTS} clients paced at {RATE:.0f}/s for {args.seconds:.0f} s per run"
    )
    show("quiet", quiet, "  (no background work)")
    print(f"upkeep  a pass over a table of {args.appends} commits starts as the load does")
    for label, mode, where in (
        ("ours", "child", "background jobs process"),
        ("anchor", "thread", "API process"),
    ):
        r, took, _ = upkeep[mode]
        ended = f"; pass done {took:.1f} s after it was due" if took is not None else "; pass not done"
        show(label, r, ended)
        print(f"        (upkeep in the {where})")
    print(
        f"feed    {args.feed_rate:.0f} MQTT messages/s during the load, ingested by the demo-elock-mqtt "
        "transport"
    )
    for label, mode, where in (
        ("ours", "child", "background jobs process"),
        ("anchor", "transports", "API process"),
    ):
        r, _, sent = feed[mode]
        show(label, r, f"; {sent:,} messages sent")
        print(f"        (the transports in the {where})")
    for scenario, runs, anchor in (("upkeep", upkeep, "thread"), ("feed", feed, "transports")):
        ours_r, anchor_r = runs["child"][0], runs[anchor][0]
        print(
            f"ratio   {scenario}: anchor/ours p99 {anchor_r['p99'] / ours_r['p99']:.1f}x, "
            f"max {anchor_r['max'] / ours_r['max']:.1f}x; ours/quiet p99 {ours_r['p99'] / quiet['p99']:.2f}"
        )
    print(f"        (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
