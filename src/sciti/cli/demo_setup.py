"""``sciti demo setup``: demo accounts, approved starter rules, a champion model and scored records.

``make run`` calls it after loading the demo world so the web app opens on a working risk queue.
It does, with real accounts and the real four-eyes flow, what a new administration would do by
hand: an analyst drafts the starter rules and trains a model, a supervisor approves and promotes.
The model learns from the demo world's own period: the KCS declarations that ``make run`` also
loads are another administration's (other fields, another fraud rate), and a model trained on both
learns which system a record came from, not fraud (docs/decisions/0066).
Accounts get one-time passwords, printed once here; run it again and it changes nothing (it scores
only records that have no assessment yet, unless it approved rules or promoted a model this time).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import typer
from rich.table import Table

from sciti.cli.common import console, fail, settings
from sciti.errors import SCITIError

# One account per role an officer would try; the name says the role (and the office it is bound to).
DEMO_ACCOUNTS = {
    "analyst": ["analyst"],
    "supervisor": ["supervisor"],
    "officer": ["targeting_officer"],
    "viewer": ["viewer"],
    "engineer": ["data_engineer"],
    "security": ["security_officer"],
    "officer-ktct": ["targeting_officer"],
}
# Accounts bound to an office: they see its records only (need-to-know: queue, record pages, SQL).
# KTCT, the container terminals, has the demo's sea declarations and the consignments of its
# manifests (decision 0108); the other accounts see every office.
DEMO_OFFICES = {"officer-ktct": "KTCT"}
KINDS = ("declaration", "consignment", "road_cargo_info", "passenger", "currency_declaration")
DEMO_SOURCE = "demo-clearance"  # the demo world's clearance system (connectors/demo-declarations)


def _accounts(s: Any) -> dict[str, str]:
    """Create the missing demo accounts; name -> one-time password (new accounts only)."""
    from sciti.access import create_user, find_user
    from sciti.ops import session_scope

    created = {}
    with session_scope(s.resolved_ops_db_url) as session:
        for name, roles in DEMO_ACCOUNTS.items():
            if find_user(session, name) is None:
                _, password = create_user(
                    session, name, roles, office_code=DEMO_OFFICES.get(name), display_name=f"Demo {name}"
                )
                created[name] = password or ""
    return created


def _rules(s: Any) -> int:
    """Starter rules drafted by the analyst, approved by the supervisor; returns how many took effect."""
    from sciti.ops import session_scope
    from sciti.risk import rules

    approved = 0
    for name, text in rules.starter_rule_texts().items():
        with session_scope(s.resolved_ops_db_url) as session:
            try:
                row = rules.save_rule(session, text, actor="analyst", comment=f"starter rule {name}")
            except rules.RuleWorkflowError:
                continue  # already there: a second run changes nothing
            rule_id, version = row.rule_id, row.version
        with session_scope(s.resolved_ops_db_url) as session:
            rules.submit(session, rule_id, version, actor="analyst", comment="demo set-up")
        with session_scope(s.resolved_ops_db_url) as session:
            rules.approve(session, rule_id, version, actor="supervisor", comment="demo set-up")
        approved += 1
    return approved


def demo_start(s: Any) -> date | None:
    """First day of the demo world's declarations in the lake; None when no world is loaded."""
    from sciti.lake import open_lake, query
    from sciti.risk.features.prepare import sql_date

    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    if not lake.exists("std.declarations"):
        return None
    day = sql_date("acceptance_date", "issue_datetime")  # the record date training splits on
    sql = f"SELECT min({day}) AS first FROM std.declarations WHERE source = '{DEMO_SOURCE}'"
    first = query(lake, sql)["first"][0].as_py()
    return first if isinstance(first, date) else None


def _model(s: Any) -> str | None:
    """Train a declaration model as the analyst and make it champion as the supervisor.

    With a demo world loaded, only records from its first day on are learnt from (and validated
    on): older records in the lake (the KCS files) are another administration's.
    """
    from sciti.risk import list_versions, promote, train

    if any(v.get("status") == "champion" for v in list_versions(s, "declaration")):
        return None
    entry = train(s, "declaration", since=demo_start(s), actor="analyst")
    promote(s, entry["version"], "champion", actor="supervisor", reason="demo set-up")
    return str(entry["version"])


def setup() -> None:
    """Demo accounts, approved starter rules, a champion model, and every record scored."""
    from sciti.risk.engine import Assessor, score_since

    s = settings()
    try:
        with console.status("demo accounts ..."):
            created = _accounts(s)
        with console.status("starter rules: drafted by analyst, approved by supervisor ..."):
            approved = _rules(s)
        with console.status("training a declaration model ..."):
            version = _model(s)
        # Same rules and champion as the last run: score only records without an assessment (new
        # ones); otherwise score everything again (each new assessment supersedes the old queue item).
        again = approved == 0 and version is None
        with console.status("scoring new records ..." if again else "scoring every record ..."):
            assessor = Assessor.load(s, kinds=KINDS)
            scored = {k: score_since(s, k, assessor=assessor, unassessed_only=again) for k in KINDS}
    except SCITIError as exc:
        fail(exc)
    console.print(f"starter rules approved: {approved}; champion model: {version or 'unchanged'}")
    for kind, result in scored.items():
        lanes = ", ".join(f"{lane} {n:,}" for lane, n in sorted(result.lanes.items()))
        skipped = f", {result.skipped:,} already assessed" if result.skipped else ""
        console.print(
            f"  {kind}: {result.records:,} scored, {result.queued:,} queued ({lanes}){skipped}",
            highlight=False,
        )
    if created:
        table = Table(title="Demo accounts (one-time passwords, shown once: each must be changed at login)")
        table.add_column("user")
        table.add_column("roles")
        table.add_column("office")
        table.add_column("one-time password")
        for name, password in created.items():
            table.add_row(
                name, ", ".join(DEMO_ACCOUNTS[name]), DEMO_OFFICES.get(name, "every office"), password
            )
        console.print(table)


def register(demo_app: typer.Typer) -> None:
    demo_app.command("setup")(setup)
