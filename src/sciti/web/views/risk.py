"""Risk pages: the queue (keyset pages), a record with its explanation and provenance, rules
(history with diffs; editing, dry-run and four-eyes approval go through the rules API), models.

Reads come from the operational database and from the lake through the caller's policy (masked
fields stay masked); every change is a call to the JSON API with the session's CSRF token, so the
page can do nothing the API would not let the same person do.
"""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pyiceberg.expressions import EqualTo
from sqlalchemy import select

from sciti.access import DataPolicy, Principal
from sciti.errors import NotFound
from sciti.lake import Lake, open_lake
from sciti.lake.views import quote_literal
from sciti.ops import session_scope
from sciti.ops.rules_tables import Rule, RuleDecision, RuleDryRun, RuleVersion
from sciti.risk.engine import list_queue
from sciti.risk.models import list_versions
from sciti.settings import Settings
from sciti.web.lakeview import lake_view
from sciti.web.render import page, render, settings_of

router = APIRouter()
LANES = ("red", "yellow", "blue", "green")


def _queue(settings: Settings, filters: dict[str, Any], cursor: str | None, mine: str | None) -> Any:
    with session_scope(settings.resolved_ops_db_url) as session:
        return list_queue(session, **filters, assigned_to=mine, cursor=cursor, limit=50)


@router.get("/risk/queue", response_class=HTMLResponse)
async def queue(
    request: Request,
    principal: Annotated[Principal, Depends(page("risk.queue"))],
    kind: str = "",
    office: str = "",
    lane: str = "",
    status: str = "",
    mine: bool = False,
    cursor: str = "",
) -> HTMLResponse:
    filters = {
        "kind": kind or None,
        "office": office or None,
        "lane": lane if lane in LANES else None,
        "status": status if status in ("open", "assigned", "done") else None,
    }
    found = await run_in_threadpool(
        _queue, settings_of(request), filters, cursor or None, principal.username if mine else None
    )
    args = {"kind": kind, "office": office, "lane": lane, "status": status, "mine": mine}
    return await render(
        request, "risk_queue.html", principal, active="risk", page=found, args=args, lanes=LANES
    )


RECORD_TABLES = ("std.declarations", "std.declaration_items", "std.declaration_parties")
ASSESSMENTS = "risk.assessments"


def _assessment(lake: Lake, principal: Principal, assessment_id: str) -> dict[str, Any] | None:
    """One assessment by id. The policy shows ``risk.assessments`` to this caller as stored (no row
    filter, no masks), so a filtered Iceberg scan is the same view, and file statistics spare
    reading the whole table (its list columns would make the SQL view read all of it)."""
    policy = DataPolicy(principal)
    if not policy.can_read(ASSESSMENTS) or not lake.exists(ASSESSMENTS):
        return None
    rule = policy.rule(ASSESSMENTS)
    if rule.row_filter or rule.columns:  # a policy that shows less: through the view
        with lake_view(lake, principal, [ASSESSMENTS]) as view:
            sql = f"SELECT * FROM risk.assessments WHERE assessment_id = {quote_literal(assessment_id)}"
            rows = view.rows(ASSESSMENTS, sql)
    else:
        only = EqualTo("assessment_id", assessment_id)  # type: ignore[call-arg,misc]
        rows = lake.catalog.load_table(ASSESSMENTS).scan(row_filter=only).to_arrow().to_pylist()
    return rows[0] if rows else None


def _record(settings: Settings, principal: Principal, assessment_id: str) -> dict[str, Any]:
    """The assessment, and for a declaration its items, parties and importer's history, through the
    caller's policy: a table the caller may not read shows as hidden, masked fields stay masked."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    a = _assessment(lake, principal, assessment_id)
    if a is None:
        raise NotFound(f"no assessment {assessment_id}", remedy="open a record from the risk queue")
    with lake_view(lake, principal, RECORD_TABLES) as view:
        out: dict[str, Any] = {
            "assessment": a,
            "factors": json.loads(a.get("factors") or "[]"),
            "items": None,
            "parties": None,
            "record": None,
        }
        if a["kind"] != "declaration":
            return out
        rid = quote_literal(a["record_id"])
        decl = view.rows("std.declarations", f"SELECT * FROM std.declarations WHERE record_id = {rid}")
        out["record"] = decl[0] if decl else None
        out["items"] = view.rows(
            "std.declaration_items",
            f"SELECT * FROM std.declaration_items WHERE parent_record_id = {rid} ORDER BY item_number",
        )
        out["parties"] = view.rows(
            "std.declaration_parties",
            f"SELECT * FROM std.declaration_parties WHERE parent_record_id = {rid} ORDER BY role, sequence",
        )
        importer = (out["record"] or {}).get("importer_id")
        if importer:
            out["trader"] = view.rows(
                "std.declarations",
                f"""SELECT strftime(acceptance_date, '%Y-%m') AS month, count(*) AS declarations
                    FROM std.declarations WHERE importer_id = {quote_literal(importer)}
                    GROUP BY ALL ORDER BY month""",  # noqa: S608 (quoted literal)
            )
    return out


@router.get("/risk/records/{assessment_id}", response_class=HTMLResponse)
async def record(
    request: Request, assessment_id: str, principal: Annotated[Principal, Depends(page("risk.queue"))]
) -> HTMLResponse:
    data = await run_in_threadpool(_record, settings_of(request), principal, assessment_id)
    return await render(request, "risk_record.html", principal, active="risk", data=data)


def _rules(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rules = session.scalars(select(Rule).order_by(Rule.kind, Rule.id)).all()
        latest = {
            (v.rule_id, v.version): v.status
            for v in session.scalars(
                select(RuleVersion).where(RuleVersion.rule_id.in_([r.id for r in rules]))
            )
        }
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "title": r.title,
                "latest": r.latest_version,
                "latest_status": latest.get((r.id, r.latest_version), ""),
                "effective": r.effective_version,
                "created_by": r.created_by,
            }
            for r in rules
        ]


@router.get("/rules", response_class=HTMLResponse)
async def rules(
    request: Request, principal: Annotated[Principal, Depends(page("rules.read"))]
) -> HTMLResponse:
    items = await run_in_threadpool(_rules, settings_of(request))
    return await render(request, "rules.html", principal, active="rules", rules=items)


def _rule(settings: Settings, rule_id: str) -> dict[str, Any]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rule = session.get(Rule, rule_id)
        if rule is None:
            raise NotFound(f"no rule {rule_id}", remedy="pick one from the list of rules")
        versions = session.scalars(
            select(RuleVersion).where(RuleVersion.rule_id == rule_id).order_by(RuleVersion.version)
        ).all()
        decisions = session.scalars(
            select(RuleDecision).where(RuleDecision.rule_id == rule_id).order_by(RuleDecision.id)
        ).all()
        runs = session.scalars(
            select(RuleDryRun).where(RuleDryRun.rule_id == rule_id).order_by(RuleDryRun.id.desc()).limit(5)
        ).all()
        out_versions = []
        previous = ""
        for v in versions:
            diff = "\n".join(
                difflib.unified_diff(
                    previous.splitlines(),
                    v.text.splitlines(),
                    f"v{v.version - 1}",
                    f"v{v.version}",
                    lineterm="",
                )
            )
            out_versions.append(
                {
                    "version": v.version,
                    "status": v.status,
                    "author": v.author,
                    "comment": v.comment,
                    "text": v.text,
                    "created_at": v.created_at,
                    "decided_by": v.decided_by,
                    "diff": diff if v.version > 1 else "",
                }
            )
            previous = v.text
        return {
            "rule": {
                "id": rule.id,
                "kind": rule.kind,
                "title": rule.title,
                "effective": rule.effective_version,
            },
            "versions": out_versions[::-1],
            "decisions": [
                {
                    "version": d.version,
                    "decision": d.decision,
                    "actor": d.actor,
                    "comment": d.comment,
                    "at": d.at,
                }
                for d in decisions
            ],
            "dry_runs": [{"version": r.version, "result": r.result} for r in runs],
        }


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
async def rule(
    request: Request, rule_id: str, principal: Annotated[Principal, Depends(page("rules.read"))]
) -> HTMLResponse:
    data = await run_in_threadpool(_rule, settings_of(request), rule_id)
    return await render(request, "rule.html", principal, active="rules", data=data)


@router.get("/rules-new", response_class=HTMLResponse)
async def new_rule(
    request: Request, principal: Annotated[Principal, Depends(page("rules.write"))]
) -> HTMLResponse:
    return await render(request, "rule_new.html", principal, active="rules")


@router.get("/models", response_class=HTMLResponse)
async def models(
    request: Request, principal: Annotated[Principal, Depends(page("models.read"))]
) -> HTMLResponse:
    versions = await run_in_threadpool(list_versions, settings_of(request))
    return await render(request, "models.html", principal, active="models", versions=versions)
