"""Benchmark: what authorisation adds to the p99 of the risk assessment endpoint (goal: <= 10%).

The same instance, data and load as bench/risk_assess_http.py (KCS declarations, 20 approved rules,
the champion model; 32 concurrent clients from a separate process), served twice by the real API
server: as shipped, and in a test configuration with authorisation disabled (every authentication
and permission dependency of the endpoint replaced by one fixed caller; see AUTH_OFF there). The
two servers take turns, several rounds, so drift of a shared machine falls on both; the medians
are compared, at saturation and at a paced rate.

Run: .venv/bin/python bench/authz_overhead.py [--rounds N] [--seconds S] [--rate R] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from risk_assess_http import free_port, payloads, phase, setup, start_server  # noqa: E402

GOAL = 0.10


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8.0, help="per phase")
    ap.add_argument("--rate", type=float, default=100.0, help="paced phase: requests/s offered")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 4 s phases")
    args = ap.parse_args()
    rounds, seconds = (1, 4.0) if args.quick else (args.rounds, args.seconds)

    results: dict[bool, dict[str, list[float]]] = {
        on: {"sat_p99": [], "paced_p99": [], "cpu": [], "rate": []} for on in (True, False)
    }
    with tempfile.TemporaryDirectory() as tmp:
        s, token = setup(Path(tmp) / "instance")
        bodies_file = Path(tmp) / "bodies.json"
        bodies_file.write_text(json.dumps([b.decode() for b in payloads(s, 2000)]))
        for r in range(rounds):
            for on in (True, False) if r % 2 == 0 else (False, True):
                port = free_port()
                server = start_server(s, port, authorisation=on)
                try:
                    phase(port, token, bodies_file, 1, 3.0, 0, server.pid)  # loads rules and models
                    sat = phase(port, token, bodies_file, args.clients, seconds, 0, server.pid)
                    paced = phase(port, token, bodies_file, args.clients, seconds, args.rate, server.pid)
                finally:
                    server.terminate()
                    server.wait(timeout=120)
                errors = sat["errors"] + paced["errors"]
                if errors:
                    raise SystemExit(f"{errors} failed requests with authorisation {'on' if on else 'off'}")
                res = results[on]
                res["sat_p99"].append(sat["p99"])
                res["paced_p99"].append(paced["p99"])
                res["cpu"].append(sat["api_cpu_ms"])
                res["rate"].append(sat["n"] / sat["wall"])

    med = {on: {k: statistics.median(v) for k, v in res.items()} for on, res in results.items()}
    on, off = med[True], med[False]
    print(f"POST /api/v1/risk/assess, {args.clients} clients, {rounds} round(s) of {seconds:.0f} s phases "
          "(medians)")  # fmt: skip
    print(f"{'':26}{'authorisation on':>18}{'off (test config)':>20}{'added':>9}")
    for label, key, unit in (
        ("saturation p99", "sat_p99", "ms"),
        (f"paced {args.rate:.0f}/s p99", "paced_p99", "ms"),
        ("API process CPU/answer", "cpu", "ms"),
        ("saturation throughput", "rate", "/s"),
    ):
        added = on[key] / off[key] - 1.0
        print(f"{label:<26}{on[key]:>15.2f} {unit}{off[key]:>17.2f} {unit}{added:>+9.1%}")
    verdict = lambda x: "meets" if x <= GOAL else "ABOVE"  # noqa: E731
    sat_added = on["sat_p99"] / off["sat_p99"] - 1.0
    paced_added = on["paced_p99"] / off["paced_p99"] - 1.0
    print(f"goal    authorisation adds <= {GOAL:.0%} to p99: saturation {sat_added:+.1%} "
          f"({verdict(sat_added)}), paced {paced_added:+.1%} ({verdict(paced_added)})")  # fmt: skip
    print(f"        (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
