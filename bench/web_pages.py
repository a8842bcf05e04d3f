"""Benchmark: server time per web page, p95, on the small demo world (goal: <= 200 ms per page).

Builds an embedded instance from the synthetic world (declarations with items and parties,
inspections and seizures, through their connectors), approves two rules, scores the declarations
(rules only: the queue fills without training a model), compacts the lake as ``make run`` does
(``sciti lake maintain``), then asks every main page as a logged-in
person holding the analyst, supervisor, data engineer and administrator roles, in process (no
network: what is measured is the server's work). The dashboard's figures are the ``/home/panels``
fragment, where its DuckDB aggregations run.

Anchor, measured in the same run: the JSON API answering the same data where it has an endpoint
(``/api/v1/batches``, ``/api/v1/risk/queue``, ``/api/v1/rules``, ``POST /api/v1/sql``) and
``/healthz`` (the floor of the framework). Prints p50/p95 per page, the ratio page/anchor, and
the goal verdict.

Run: .venv/bin/python bench/web_pages.py [REQUESTS]   (default 40 per page; --quick: tiny world, 10)
     --home=DIR builds the instance in DIR once and reuses it on later runs (each run compacts
     again, as a nightly ``sciti lake maintain`` would), so a lake change can be measured on the
     same data before and after. (A copy of DIR still writes to and reads the original's files:
     the catalog names data files by absolute path.)
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from sciti.access import create_user
from sciti.api.app import create_app
from sciti.demo import generate
from sciti.demo.load import load_world
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk import rules
from sciti.risk.engine import score_since
from sciti.settings import Settings

GOAL_MS = 200.0
PASSWORD = "harbour-lantern-quietly-7"
FEEDS = [
    "demo-declarations",
    "demo-declaration-items",
    "demo-declaration-parties",
    "demo-inspections",
    "demo-seizures",
]
RULES = [
    {
        "id": "B-HEAVY",
        "title": "Heavy",
        "kind": "declaration",
        "when": "gross_mass_kg > 20000",
        "weight": 30,
        "reason": "{gross_mass_kg} kg",
    },
    {
        "id": "B-VALUE",
        "title": "Valuable",
        "kind": "declaration",
        "when": "customs_value > 100000",
        "weight": 30,
        "reason": "value {customs_value}",
    },
]
SQL = "SELECT office_code, count(*) AS n FROM std.declarations GROUP BY 1 ORDER BY 2 DESC"


def _settings(home: Path) -> Settings:
    return Settings(home=home / "instance", log_json=True, connectors_dir=Path("connectors"))


def maintain(settings: Settings) -> None:
    """As `make run` does after loading: one-file batches leave many small files; compact them."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    start = time.perf_counter()
    for info in lake.list_tables():
        done = lake.maintain(info.ident)
        if info.ident in ("std.declarations", "std.declaration_items", "risk.assessments"):
            print(
                f"{info.ident}: {done.compact.files_before} files compacted to {done.compact.files_after}"
                f" ({done.compact.files_rewritten} rewritten)"
            )
    print(f"lake maintained in {time.perf_counter() - start:.1f} s")


def build(home: Path, scale: str) -> Settings:
    settings = _settings(home)
    settings.home.mkdir(parents=True)
    migrate(settings.resolved_ops_db_url)
    world = generate(home / "world", scale, 7)
    load_world(settings, world.out, feeds=FEEDS, reference=True)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(
            s, "bench", ["analyst", "supervisor", "data_engineer", "administrator"], password=PASSWORD
        )
        create_user(s, "second", ["supervisor"], service=True)
        for rule in RULES:
            v = rules.create_rule(s, rule, actor="bench")
            rules.submit(s, rule["id"], v.version, actor="bench")
            rules.approve(s, rule["id"], v.version, actor="second")
    rules.clear_cache()
    score_since(settings, "declaration")
    return settings


def measure(client: TestClient, method: str, url: str, n: int, **kw) -> tuple[float, float]:
    """(p50, p95) in ms of ``n`` requests, after one warm-up."""
    assert client.request(method, url, **kw).status_code == 200, url
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.request(method, url, **kw)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, int(n * 0.95))]


def main() -> int:
    quick = "--quick" in sys.argv
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = 10 if quick else int(args[0]) if args else 40
    scale = "tiny" if quick else "small"
    homes = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--home=")]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(homes[0]) if homes else Path(tmp)
        start = time.perf_counter()
        if (home / "instance").exists():
            settings = _settings(home)
            print(f"instance: reusing {home} (built by an earlier run)")
        else:
            settings = build(home, scale)
            print(f"instance: {scale} demo world loaded and scored in {time.perf_counter() - start:.0f} s")
        maintain(settings)
        with session_scope(settings.resolved_ops_db_url) as s:
            top = s.query(RiskQueueItem.assessment_id).order_by(RiskQueueItem.score.desc()).first()
            queued = s.query(RiskQueueItem).count()
        client = TestClient(create_app(settings))
        # The login form carries an anti-CSRF token (set with a cookie by the login page): echo it.
        tokens = re.findall(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)
        login = {"username": "bench", "password": PASSWORD, "csrf_token": tokens[-1] if tokens else ""}
        assert client.post("/ui/login", data=login, follow_redirects=False).status_code == 303, "login"
        csrf = re.search(r'data-csrf="([^"]+)"', client.get("/ui/").text).group(1)
        pages = [
            ("home (shell)", "GET", "/ui/", {}, ("GET", "/healthz", {})),
            ("home (figures)", "GET", "/ui/home/panels", {}, None),
            ("sources", "GET", "/ui/sources", {}, ("GET", "/api/v1/batches", {})),
            ("quarantine", "GET", "/ui/quarantine", {}, None),
            ("sql workbench", "GET", "/ui/sql", {}, None),
            (
                "sql run",
                "POST",
                "/ui/sql/run",
                {"data": {"sql": SQL, "csrf_token": csrf}},
                ("POST", "/api/v1/sql", {"json": {"sql": SQL}, "headers": {"X-CSRF-Token": csrf}}),
            ),
            ("risk queue", "GET", "/ui/risk/queue", {}, ("GET", "/api/v1/risk/queue", {})),
            ("record", "GET", f"/ui/risk/records/{top[0]}" if top else "/ui/risk/queue", {}, None),
            ("rules", "GET", "/ui/rules", {}, ("GET", "/api/v1/rules", {})),
            ("rule", "GET", "/ui/rules/B-HEAVY", {}, ("GET", "/api/v1/rules/B-HEAVY/history", {})),
            ("models", "GET", "/ui/models", {}, None),
            ("admin users", "GET", "/ui/admin/users", {}, ("GET", "/api/v1/users", {})),
            ("audit log", "GET", "/ui/admin/audit", {}, ("GET", "/api/v1/audit", {})),
        ]
        print(
            f"{n} requests per page, in process; {queued:,} records in the queue"
            f" (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})"
        )
        print(f"{'page':<16} {'p50 ms':>8} {'p95 ms':>8}   {'anchor':<28} {'p95 ms':>8} {'ratio':>6}  goal")
        worst = 0.0
        for name, method, url, kw, anchor in pages:
            p50, p95 = measure(client, method, url, n, **kw)
            worst = max(worst, p95)
            a_text, a95, ratio = "—", "", ""
            if anchor:
                a_method, a_url, a_kw = anchor
                _, a = measure(client, a_method, a_url, n, **a_kw)
                a_text, a95, ratio = f"{a_method} {a_url}"[:28], f"{a:8.1f}", f"{p95 / a:6.2f}"
            verdict = "met" if p95 <= GOAL_MS else "NOT met"
            print(f"{name:<16} {p50:8.1f} {p95:8.1f}   {a_text:<28} {a95:>8} {ratio:>6}  {verdict}")
        print(
            f"worst page p95 {worst:.1f} ms; goal <= {GOAL_MS:.0f} ms: "
            f"ratio worst/goal = {worst / GOAL_MS:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
