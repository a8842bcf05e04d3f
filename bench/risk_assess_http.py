"""Benchmark: single-record risk assessment over HTTP with 32 concurrent clients.

Builds an instance from the KCS declarations (../shared/data/kcs/valid.csv through connectors/kcs),
approves 20 rules (four eyes), trains the declaration model with ``sciti.risk.models.train`` and
promotes it champion. Starts the real API server (uvicorn, its own process), then a load process
(asyncio, raw HTTP/1.1 keep-alive, 32 connections, each sending its next request when the last is
answered) posts one declaration per request to ``POST /api/v1/risk/assess``: features, rules, model,
explanation, the answer committed to the durable buffer (and flushed to ``risk.assessments``).

Prints p50/p95/p99 latency and throughput; goal: p99 <= 25 ms on 2 cores. For scale it also runs
the same clients against ``GET /api/v1/me`` (token check, no other work): what the HTTP server
and framework alone give on this machine. The server is one
uvicorn process (uvloop and httptools when installed, which uvicorn picks up by itself); bearer
tokens are resolved from the database once per TOKEN_CACHE_SECONDS, not per request.

Run: .venv/bin/python bench/risk_assess_http.py [--seconds S] [--clients N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from risk_batch import SHARED, rule_texts, settings_for  # noqa: E402  (the same instance recipe)

GOAL_P99_MS = 25.0
SERVER = """
import uvicorn
from sciti.api.app import create_app
from sciti.settings import get_settings
app = create_app(get_settings())
{overrides}
uvicorn.run(app, host="127.0.0.1", port={port}, log_config=None, access_log=False, server_header=False)
"""
# The test configuration "authorisation disabled" (bench/authz_overhead.py): every authentication
# and permission dependency of the app is replaced by one fixed caller. Only this benchmark does it.
AUTH_OFF = """
import typing
from sciti.access import Principal, current_principal, optional_principal
from sciti.api.routers import risk
caller = Principal(0, "bench", "bench", ("clearance_system",), None, frozenset(["risk.assess"]))
async def fixed():
    return caller
permission = typing.get_args(risk.Assessing)[1].dependency  # require("risk.assess")
for dependency in (optional_principal, current_principal, permission):
    app.dependency_overrides[dependency] = fixed
"""


def setup(home: Path, database: str | None = None) -> tuple[object, str]:
    """The instance; ``database``: a PostgreSQL URL for the operational database and catalogue."""
    from sciti.access import create_user, issue_token
    from sciti.acquire import Runner, load_connector
    from sciti.ops import migrate, session_scope
    from sciti.risk import models, rules

    home.mkdir(parents=True)
    s = settings_for(home)
    if database:
        s = s.model_copy(update={"ops_db_url": database, "catalog_uri": database})
    migrate(s.resolved_ops_db_url)
    Runner(s).ingest_path(load_connector(s, "kcs"), SHARED / "kcs" / "valid.csv")
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "author", ["analyst"], service=True)
        create_user(session, "approver", ["supervisor"], service=True)
        system, _ = create_user(session, "clearance", ["clearance_system"], service=True)
        token = issue_token(session, system, 600).token
        for r in rule_texts(20):
            rules.create_rule(session, r, actor="author")
            rules.submit(session, r["id"], 1, actor="author")
            rules.approve(session, r["id"], 1, actor="approver")
    entry = models.train(s, "declaration", actor="author", promote_to="champion")
    print(f"model   {entry['version']} (registry champion)")
    return s, token


def payloads(settings, n: int) -> list[bytes]:
    """KCS declarations as a clearance system sends them (only the input fields)."""
    from sciti.model import get_kind
    from sciti.risk import features

    header = {f.name for f in get_kind("declaration").fields}
    item = {f.name for f in get_kind("declaration_item").fields} - {"declaration_id", "declaration_version"}

    def plain(v):
        if isinstance(v, (date, datetime)):
            return v.isoformat()
        return float(v) if isinstance(v, Decimal) else v

    out = []
    for row in features.lake_records(settings, "declaration").slice(0, n).to_pylist():
        record = {k: plain(v) for k, v in row.items() if k in header and v is not None}
        record["items"] = [{k: plain(v) for k, v in row.items() if k in item and v is not None}]
        out.append(json.dumps({"kind": "declaration", "record": record}).encode())
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the load process -------------------------------------------------------------------------------
async def _client(
    port: int, token: str, bodies: list[bytes] | None, start: int, stop_at: float, interval: float,
    lat: list, errors: list,
):  # fmt: skip
    """One clearance-system connection. ``interval`` 0: the next request as soon as the last is
    answered (saturation). Otherwise requests are due every ``interval`` seconds and latency counts
    from when a request was due, so a slow answer also counts against the requests queued behind it
    (no coordinated omission)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    due = time.perf_counter() + (interval * random.random() if interval else 0.0)  # staggered starts
    while due < stop_at:
        if interval:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if bodies is None:  # the framework floor: an authenticated request that does no work
            body = b""
            head = f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        else:
            body = bodies[i % len(bodies)]
            i += 7
            head = (
                f"POST /api/v1/risk/assess HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        t0 = due if interval else time.perf_counter()
        writer.write(head + body)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        done = time.perf_counter()
        lat.append(done - t0)
        if status != 200:
            errors.append(status)
        due = due + interval if interval else done
    writer.close()


def load(port: int, token: str, bodies_file: str, clients: int, seconds: float, rate: float) -> None:
    """Run as its own process: ``rate`` 0 = saturation, else that many requests/s over all clients.
    ``bodies_file`` "-": the framework floor (``GET /api/v1/me``)."""
    bodies = None if bodies_file == "-" else [b.encode() for b in json.loads(Path(bodies_file).read_text())]
    interval = clients / rate if rate else 0.0

    async def run(duration: float) -> tuple[list, list]:
        lat: list[float] = []
        errors: list[int] = []
        stop_at = time.perf_counter() + duration
        await asyncio.gather(
            *(_client(port, token, bodies, c, stop_at, interval, lat, errors) for c in range(clients))
        )
        return lat, errors

    warm, _ = asyncio.run(run(2.0))  # warm-up
    start = time.perf_counter()
    lat, errors = asyncio.run(run(seconds))
    wall = time.perf_counter() - start
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    stats = {"n": len(lat), "n_all": len(lat) + len(warm), "wall": wall, "errors": len(errors)}
    stats |= {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": lat[-1] * 1000}
    print(json.dumps(stats))


def server_cpu(pid: int, *, children: bool = True) -> float:
    """CPU seconds used so far by the server process and (``children``) the lake flusher."""
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)] if children else [proc]
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs if p.is_running())


def phase(port, token, bodies_file, clients, seconds, rate, pid) -> dict:
    cpu0, api0 = server_cpu(pid), server_cpu(pid, children=False)
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), token, str(bodies_file), str(clients), str(seconds),
         str(rate)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu_ms"] = (server_cpu(pid) - cpu0) * 1000 / max(1, result["n_all"])
    result["api_cpu_ms"] = (server_cpu(pid, children=False) - api0) * 1000 / max(1, result["n_all"])
    return result


def start_engine(s, port: int, token: str, body: bytes) -> None:
    """One assessment before any phase: the engine loads (rules, model, reference) and starts its
    lake flusher on first use. Returns once that answer is in the lake, so the flusher child has
    made its first pass; otherwise the first phase's CPU per answer would carry the start-up."""
    from sciti.risk.engine.flusher import pending

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/risk/assess", body, headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"the first assessment failed: HTTP {response.status}")
    deadline = time.monotonic() + 300
    while pending(s.resolved_ops_db_url) and time.monotonic() < deadline:
        time.sleep(0.2)


def show(label: str, r: dict) -> None:
    rate = r["n"] / r["wall"]
    print(f"        {label:<22} {rate:6,.0f} answers/s  p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  "
          f"p99 {r['p99']:6.1f}  max {r['max']:6.1f} ms  errors {r['errors']}  "
          f"CPU/answer {r['api_cpu_ms']:.2f} + {r['cpu_ms'] - r['api_cpu_ms']:.2f} ms")  # fmt: skip


@contextlib.contextmanager
def scratch_database(server: str | None) -> Iterator[str | None]:
    """A fresh PostgreSQL database on ``server`` for one run (None: the embedded SQLite)."""
    if not server:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"sciti_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_server(s, port: int, *, authorisation: bool = True, extra: str = "") -> subprocess.Popen:
    """The real API server in its own process, listening when this returns. ``extra``: code run
    after the app is made, before it serves."""
    env = {**os.environ, "SCITI_LOG_LEVEL": "WARNING"}
    for name in ("home", "codelists_dir", "wco_schema_dir", "edifact_dir", "connectors_dir"):
        env[f"SCITI_{name.upper()}"] = str(getattr(s, name))
    for name in ("ops_db_url", "catalog_uri"):
        if getattr(s, name):
            env[f"SCITI_{name.upper()}"] = str(getattr(s, name))
    script = SERVER.format(port=port, overrides=("" if authorisation else AUTH_OFF) + extra)
    server = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.DEVNULL, cwd=ROOT)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the API server did not start")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15.0, help="per phase")
    ap.add_argument("--rates", default="50,100,150,200,300", help="paced phases: requests/s offered")
    ap.add_argument("--quick", action="store_true", help="smoke run: 4 seconds per phase")
    ap.add_argument(
        "--postgres",
        metavar="SERVER",
        help="operational database and catalogue on this PostgreSQL server, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432 (a fresh database, dropped afterwards)",
    )
    ap.add_argument("--load", nargs=6, help=argparse.SUPPRESS)  # internal: run as the load process
    args = ap.parse_args()
    if args.load:
        port, token, bodies, clients, seconds, rate = args.load
        load(int(port), token, bodies, int(clients), float(seconds), float(rate))
        return 0
    seconds = 4.0 if args.quick else args.seconds
    rates = [float(r) for r in args.rates.split(",") if r]

    from sciti.lake import open_lake, query

    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.postgres) as database:
        s, token = setup(Path(tmp) / "instance", database)
        bodies_file = Path(tmp) / "bodies.json"
        bodies_file.write_text(json.dumps([b.decode() for b in payloads(s, 2000)]))
        port = free_port()
        server = start_server(s, port)
        paced: list[tuple[float, dict]] = []
        try:
            start_engine(s, port, token, payloads(s, 1)[0])
            saturated = phase(port, token, bodies_file, args.clients, seconds, 0, server.pid)
            floor = phase(port, token, "-", args.clients, seconds, 0, server.pid)
            for rate in rates:
                paced.append((rate, phase(port, token, bodies_file, args.clients, seconds, rate, server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=120)
        lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
        stored = query(lake, "SELECT count(*) FROM risk.assessments").column(0)[0].as_py()

    answered = saturated["n"] + sum(r["n"] for _, r in paced)
    where = "PostgreSQL" if args.postgres else "SQLite (embedded)"
    print(f"ours    POST /api/v1/risk/assess, {args.clients} concurrent clients, {seconds:.0f} s per phase, "
          f"operational database {where}")  # fmt: skip
    cpu, api = saturated["cpu_ms"], saturated["api_cpu_ms"]
    print(f"        server CPU per answer {cpu:.2f} ms: API process {api:.2f} ms, "
          "the rest the lake flusher process")  # fmt: skip
    show("saturation (no pause)", saturated)
    for rate, r in paced:
        show(f"paced at {rate:,.0f}/s", r)
    print(f"floor   GET /api/v1/me (token check only), same clients; API process "
          f"{floor['api_cpu_ms']:.2f} ms CPU per answer")  # fmt: skip
    show("saturation (no pause)", floor)
    errors = saturated["errors"] + sum(r["errors"] for _, r in paced)
    print(f"        {errors} errors; {stored:,} assessments in risk.assessments after shutdown "
          f"(>= {answered:,} answered in the measured phases)")  # fmt: skip
    within = [rate for rate, r in paced if r["p99"] <= GOAL_P99_MS and r["errors"] == 0]
    ratio = GOAL_P99_MS / saturated["p99"]
    verdict = "meets" if saturated["p99"] <= GOAL_P99_MS else "BELOW"
    print(f"goal    p99 <= {GOAL_P99_MS:.0f} ms with {args.clients} clients")
    print(f"        at saturation: ratio goal/ours = {ratio:.2f} ({verdict} the goal); "
          f"the floor's p99 is {floor['p99']:.1f} ms")  # fmt: skip
    best = f"{max(within):,.0f} answers/s" if within else "none of the paced rates"
    print(f"        paced: p99 within the goal up to {best}")
    print(f"        (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
