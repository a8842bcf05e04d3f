"""Risk pages: the queue (keyset pages), a record with its explanation and provenance, rules
(history with diffs; editing, dry-run and four-eyes approval go through the rules API), models.

Reads come from the operational database and from the lake through the caller's policy (masked
fields stay masked); every change is a call to the JSON API with the session's CSRF token, so the
page can do nothing the API would not let the same person do. An office-bound account sees its
own office's queue and records only: another office's record is "not found", as in the API.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access import DataPolicy, Principal
from sciti.access.sqlpath import audited_query
from sciti.lake import open_lake
from sciti.lake.views import quote_literal
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskOutbox, RiskQueueItem
from sciti.ops.rules_tables import Rule, RuleDecision, RuleDryRun, RuleVersion
from sciti.risk.engine import in_scope, list_queue, queue_item
from sciti.risk.engine.workqueue import ANY_STATUS, OPEN_STATUSES, STATUSES, lane_rules, may_work
from sciti.risk.models import list_versions, sources_differ
from sciti.risk.rules import parse_rule, protected_fields, shown_dry_run
from sciti.risk.rules.protected import missing_permissions
from sciti.settings import Settings
from sciti.web.errors import PageNotFound
from sciti.web.lakeview import LakeView, lake_view
from sciti.web.render import page, render, settings_of
from sciti.web.words import paired, reason_words

router = APIRouter()
LANES = ("red", "yellow", "blue", "green")
# The queue page's status choices: "" (the default) is work still to do, open or taken.
QUEUE_STATUSES = (*STATUSES, ANY_STATUS)


def _queue(
    settings: Settings, principal: Principal, filters: dict[str, Any], cursor: str | None, mine: bool
) -> Any:
    with session_scope(settings.resolved_ops_db_url) as session:
        return list_queue(
            session,
            scope=principal.office_code,
            **filters,
            assigned_to=principal.username if mine else None,
            cursor=cursor,
            limit=50,
        )


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
        "status": status if status in QUEUE_STATUSES else None,
    }
    found = await run_in_threadpool(_queue, settings_of(request), principal, filters, cursor or None, mine)
    args = {"kind": kind, "office": office, "lane": lane, "status": status, "mine": mine}
    return await render(
        request,
        "risk_queue.html",
        principal,
        active="risk",
        page=found,
        args=args,
        lanes=LANES,
        statuses=("", *QUEUE_STATUSES),
        reason_words=reason_words,
    )


RECORD_TABLES = (
    "std.declarations",
    "std.declaration_items",
    "std.declaration_parties",
    "std.customs_responses",
    "std.customs_response_duties",
)
ASSESSMENTS = "risk.assessments"
PARTIES = "std.declaration_parties"
_ITEM_PREFIX = re.compile(r"^Item [^:]{1,40}: ")


def _shown_reasons(
    reasons: list[str] | None, codes: list[Any] | None, factors: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]] | None]:
    """The reasons and their codes without the model's factor lines: the page shows those once,
    under the chart. A line is a factor's by its code; without codes (an assessment stored before
    they were kept), by its words."""
    pairs = paired(reasons, codes)
    if pairs and all(said is not None for _, said in pairs):
        kept = [(r, said) for r, said in pairs if said is not None and said["code"] != "factor"]
        return [r for r, _ in kept], [said for _, said in kept if said is not None]
    texts = {str(f.get("text")) for f in factors}
    return [r for r, _ in pairs if _ITEM_PREFIX.sub("", r) not in texts], None


def _parties_sql(record_id: str) -> str:
    return (
        f"SELECT * FROM {PARTIES} WHERE parent_record_id = {quote_literal(record_id)}"  # noqa: S608
        " ORDER BY role, sequence"
    )


def _buffered(settings: Settings, assessment_id: str) -> dict[str, Any] | None:
    """The assessment as the durable buffer holds it (``risk_outbox``), None once the lake flusher
    has moved it (about 20 s after a real-time answer). Read before the lake: the flusher commits
    to the lake before it deletes from the buffer, so one of the two always has it."""
    with session_scope(settings.resolved_ops_db_url) as session:
        payload = session.scalars(
            select(RiskOutbox.payload).where(RiskOutbox.assessment_id == assessment_id).limit(1)
        ).first()
    if payload is None:
        return None
    row: dict[str, Any] = json.loads(payload)
    row["assessed_at"] = datetime.fromisoformat(row["assessed_at"])
    return row


def _assessment(
    principal: Principal, view: LakeView, assessment_id: str, buffered: dict[str, Any] | None
) -> dict[str, Any]:
    """The assessment from the lake, or from the buffer when the lake does not have it yet; the
    buffered one under the lake table's own rules (need-to-know, office rows, masks)."""
    if buffered is not None:
        policy = DataPolicy(principal)
        if policy.can_read(ASSESSMENTS) and in_scope(buffered.get("office_code"), principal.office_code):
            return policy.mask_record(ASSESSMENTS, buffered)
    else:
        found = view.rows(
            ASSESSMENTS,
            f"SELECT * FROM {ASSESSMENTS} WHERE assessment_id = {quote_literal(assessment_id)}",  # noqa: S608
        )
        if found:
            return found[0]
    # Unknown, or of another office for an office-bound account: the same answer.
    raise PageNotFound("error.no_assessment", "error.no_assessment_remedy", id=assessment_id)


def _work(session: Session, principal: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """The record's queue item as the caller may see it, what the caller may do with it, and its
    recorded inspection result. Actions are offered only where the API would take them."""
    item = queue_item(session, a["assessment_id"], scope=principal.office_code)
    to_do = item is not None and item["status"] in OPEN_STATUSES
    taker = item["assigned_to"] if item else None
    supervisor = principal.can("risk.supervise")
    works = to_do and principal.can("risk.work")
    free_to_me = may_work(taker, principal.username, supervisor=supervisor)
    return {
        "item": item,
        # Override and inspection result: the caller's office's open item, not taken by another
        # officer (unless the caller supervises).
        "workable": works and free_to_me,
        "can_take": works and taker is None,
        "can_release": works and taker is not None and free_to_me,
        "can_reassign": to_do and supervisor,
        "result": _result(session, principal, a["kind"], a["record_id"]),
    }


def _result(session: Session, principal: Principal, kind: str, record_id: str) -> dict[str, Any] | None:
    """The record's inspection result (a record takes one), when its assessment is the caller's to see."""
    rows = session.scalars(
        select(RiskInspection)
        .where(RiskInspection.kind == kind, RiskInspection.record_id == record_id)
        .order_by(RiskInspection.created_at)
    ).all()
    for r in rows:
        where = session.get(RiskQueueItem, r.assessment_id) if r.assessment_id else None
        if where is not None and in_scope(where.office_code, principal.office_code):
            return {
                "inspection_id": r.inspection_id,
                "assessment_id": r.assessment_id,
                "outcome": r.outcome,
                "fraud": r.fraud,
                "inspected_on": r.inspected_on,
                "findings": r.findings,
                "revenue_raised": r.revenue_raised,
                "actor": r.actor,
                "recorded_at": r.created_at,
            }
    return None


def _record(settings: Settings, principal: Principal, assessment_id: str) -> dict[str, Any]:
    """The assessment, and for a declaration its items, parties and importer's history, through the
    caller's policy: a table the caller may not read shows as hidden, masked fields stay masked.

    One DuckDB connection serves every read, and each query filters by id inside the Parquet scan
    (``risk.assessments`` included: its list columns map to DuckDB lists, see sciti.lake.views).
    An assessment still in the durable buffer (a real-time answer of the last seconds) is read
    from there, so its record page opens as soon as its queue item is listed.
    """
    buffered = _buffered(settings, assessment_id)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    with lake_view(lake, principal, (ASSESSMENTS, *RECORD_TABLES)) as view:
        a = _assessment(principal, view, assessment_id, buffered)
        factors = json.loads(a.get("factors") or "[]")
        with session_scope(settings.resolved_ops_db_url) as session:
            work = _work(session, principal, a)
        reasons, codes = _shown_reasons(a.get("reasons"), a.get("reason_codes"), factors)
        out: dict[str, Any] = {
            "assessment": a,
            **work,
            "lane_rules": lane_rules(a.get("reasons"), a["lane"]),
            "reasons": reasons,
            "reason_codes": codes,
            "factors": factors,
            "items": None,
            "parties": None,
            "responses": None,
            "duties": None,
            "record": None,
            "unmasked": False,
        }
        if a["kind"] != "declaration":
            return out
        rid = quote_literal(a["record_id"])
        decl = view.rows("std.declarations", f"SELECT * FROM std.declarations WHERE record_id = {rid}")
        out["record"] = decl[0] if decl else None
        # None: the caller may not read it; []: not in the lake (a declaration assessed in real
        # time before, or without, its ingestion).
        out["record_missing"] = decl == []
        out["items"] = view.rows(
            "std.declaration_items",
            f"SELECT * FROM std.declaration_items WHERE parent_record_id = {rid} ORDER BY item_number",
        )
        out["parties"] = view.rows(PARTIES, _parties_sql(a["record_id"]))
        # Customs' answers (decision 0122): by the MRN, or by the LRN an original was lodged under.
        ref = quote_literal((out["record"] or {}).get("declaration_id") or "")
        out["responses"] = view.rows(
            "std.customs_responses",
            f"""SELECT response_id, issue_datetime, declaration_id, lrn, declaration_version,
                       function_code, status_code, duty_tax_total, currency, duty_line_count
                FROM std.customs_responses WHERE declaration_id = {ref} OR lrn = {ref}
                ORDER BY issue_datetime, response_id""",  # noqa: S608 (quoted literal)
        )
        out["duties"] = _duties(view, out["responses"], out["items"])
        importer = (out["record"] or {}).get("importer_id")
        if importer:
            out["trader"] = view.rows(
                "std.declarations",
                f"""SELECT strftime(acceptance_date, '%Y-%m') AS month, count(*) AS declarations
                    FROM std.declarations WHERE importer_id = {quote_literal(importer)}
                    AND acceptance_date IS NOT NULL GROUP BY ALL ORDER BY month""",  # noqa: S608 (quoted literal)
            )
    return out


def _duties(
    view: LakeView, responses: list[dict[str, Any]] | None, items: list[dict[str, Any]] | None
) -> dict[str, Any] | None:
    """The duty and tax lines of the latest response, and per goods item the duty the declaration
    states beside what customs assessed, when the declaration states any. None without a response
    or when the caller may not read the lines."""
    if not responses:
        return None
    latest = responses[-1]
    lines = view.rows(
        "std.customs_response_duties",
        f"""SELECT item_number, line_number, tax_type, duty_regime_code, tax_base, tax_rate,
                   assessed_amount, payment_amount, currency
            FROM std.customs_response_duties WHERE response_id = {quote_literal(latest["response_id"])}
            ORDER BY item_number, line_number""",  # noqa: S608 (quoted literal)
    )
    if not lines:
        return None
    return {"response": latest, "lines": lines, "compared": compare_duties(lines, items or [])}


def compare_duties(lines: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Per goods item, the duty the declaration states (``duty_amount``) beside the sum customs
    assessed over the item's lines, and the difference; None when no item states a duty. An item
    whose lines lack an amount or mix currencies has no assessed sum (a partial sum would mislead)."""
    declared = {i["item_number"]: i.get("duty_amount") for i in items if "item_number" in i}
    if all(amount is None for amount in declared.values()):
        return None
    compared = []
    for number in sorted({line["item_number"] for line in lines} | set(declared)):
        own = [line for line in lines if line["item_number"] == number]
        amounts = [line["assessed_amount"] for line in own]
        one_currency = len({line["currency"] for line in own}) <= 1
        assessed = sum(amounts) if own and None not in amounts and one_currency else None
        stated = declared.get(number)
        compared.append(
            {
                "item_number": number,
                "declared_duty": stated,
                "assessed_duty": assessed,
                "duty_difference": assessed - stated if assessed is not None and stated is not None else None,
                "currency": own[0]["currency"] if own and one_currency else None,
            }
        )
    return compared


def _unmasked_parties(
    settings: Settings, principal: Principal, record_id: str, assessment_id: str, purpose: str, client: str
) -> list[dict[str, Any]]:
    """The declaration's parties with personal fields in clear: the SQL path's unmask, which checks
    ``personal.unmask`` and the purpose and writes the audit entry (action ``unmask``)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    with audited_query(
        settings.resolved_ops_db_url,
        lake,
        principal,
        _parties_sql(record_id),
        action="unmask",
        source=client,
        unmask=True,
        purpose=purpose,
        extra={"record_id": record_id, "assessment_id": assessment_id, "via": "web"},
    ) as result:
        rows = result.reader.read_all().to_pylist()
        result.rows = len(rows)
    return rows


@router.get("/risk/records/{assessment_id}", response_class=HTMLResponse)
async def record(
    request: Request, assessment_id: str, principal: Annotated[Principal, Depends(page("risk.queue"))]
) -> HTMLResponse:
    data = await run_in_threadpool(_record, settings_of(request), principal, assessment_id)
    return await render(
        request, "risk_record.html", principal, active="risk", data=data, reason_words=reason_words
    )


@router.post("/risk/records/{assessment_id}/unmask", response_class=HTMLResponse)
async def record_unmasked(
    request: Request,
    assessment_id: str,
    principal: Annotated[Principal, Depends(page("personal.unmask"))],
    purpose: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The record page with the parties' personal fields in clear, for a stated purpose (audited).

    A POST, so the purpose never lands in a URL or history; the answer is never cached."""
    settings = settings_of(request)
    data = await run_in_threadpool(_record, settings, principal, assessment_id)
    if data["parties"] is not None:
        data["parties"] = await run_in_threadpool(
            _unmasked_parties,
            settings,
            principal,
            data["assessment"]["record_id"],
            assessment_id,
            purpose.strip(),
            request.client.host if request.client else "web",
        )
        data["unmasked"] = True
    response = await render(
        request, "risk_record.html", principal, active="risk", data=data, reason_words=reason_words
    )
    response.headers["Cache-Control"] = "no-store"
    return response


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


def _withheld(result: dict[str, Any], fields: dict[str, list[str]], reader: Principal) -> dict[str, Any]:
    """Why kept dry-run figures are withheld from ``reader``, as a message key and its values (the
    page's words; ``shown_dry_run`` says it in English): made over another scope than the reader's
    office, or the rule names fields the reader may not read in clear."""
    office = result.get("office")
    if reader.office_code and office != reader.office_code:
        return {"why_key": "rules.withheld_every_office" if office is None else "rules.withheld_other_office"}
    needs = sorted(missing_permissions(reader.permissions, fields))
    if needs:
        return {"why_key": "rules.withheld_fields", "needs": ", ".join(needs)}
    return {}  # a reason this page does not know: it shows shown_dry_run's words


def _rule(settings: Settings, rule_id: str, principal: Principal) -> dict[str, Any]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rule = session.get(Rule, rule_id)
        if rule is None:
            raise PageNotFound("error.no_rule", "error.no_rule_remedy", id=rule_id)
        versions = session.scalars(
            select(RuleVersion).where(RuleVersion.rule_id == rule_id).order_by(RuleVersion.version)
        ).all()
        decisions = session.scalars(
            select(RuleDecision).where(RuleDecision.rule_id == rule_id).order_by(RuleDecision.id)
        ).all()
        runs = session.scalars(
            select(RuleDryRun).where(RuleDryRun.rule_id == rule_id).order_by(RuleDryRun.id.desc()).limit(5)
        ).all()
        named: dict[int | None, dict[str, list[str]]] = {
            v.version: protected_fields(parse_rule(v.text)) for v in versions
        }
        # Kept figures only where this reader could have made them (their office; fields they
        # may read in clear): decision 0080. The others are named as withheld, with why.
        kept: list[dict[str, Any]] = []
        for r in runs:
            fields = named.get(r.version, {})
            shown, withheld = shown_dry_run(r.result, fields, principal)
            kept.append(
                {"version": r.version, "result": shown}
                if withheld is None
                else {"version": r.version, "why": withheld, **_withheld(r.result, fields, principal)}
            )
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
            "dry_runs": [run for run in kept if "result" in run],
            # Newest first, like the runs: the page says the figures exist but are not this reader's.
            "dry_runs_withheld": [run for run in kept if "why" in run],
            "personal_fields": named.get(rule.latest_version, {}).get("personal", []),
        }


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
async def rule(
    request: Request, rule_id: str, principal: Annotated[Principal, Depends(page("rules.read"))]
) -> HTMLResponse:
    data = await run_in_threadpool(_rule, settings_of(request), rule_id, principal)
    return await render(request, "rule.html", principal, active="rules", data=data)


@router.get("/rules-new", response_class=HTMLResponse)
async def new_rule(
    request: Request, principal: Annotated[Principal, Depends(page("rules.write"))]
) -> HTMLResponse:
    return await render(request, "rule_new.html", principal, active="rules")


# Headline figures of a version's validation, in the order the table shows them.
HEADLINE = ("precision@1%", "precision@5%", "precision@10%", "roc_auc", "average_precision")
CURVE_SETS = ("validation", "validation_random")  # all inspected records; random inspections only


def _headline(metrics: dict[str, Any] | None) -> list[tuple[str, float]]:
    """Figures to show beside a version: its validation's headline metrics (finite ones only)."""
    found = ((metrics or {}).get("validation") or {}).get("metrics") or {}
    out = [(k, float(found[k])) for k in HEADLINE if isinstance(found.get(k), (int, float))]
    return [(k, v) for k, v in out if v == v]  # NaN (undefined) is left out


def _curve_sets(entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The curves recorded at training, per evaluated set; None when the version has none."""
    metrics = entry.get("metrics") or {}
    sets = []
    for key in CURVE_SETS:
        part = metrics.get(key) or {}
        if isinstance(part.get("curves"), dict):
            sets.append(
                {"key": key, "n": part.get("n"), "positives": part.get("positives"), **part["curves"]}
            )
    return sets or None


def _models(settings: Settings, version: str) -> dict[str, Any]:
    versions = list_versions(settings)
    for v in versions:
        v["headline"] = _headline(v.get("metrics"))
    chosen = None
    if version:
        chosen = next((v for v in versions if v["version"] == version), None)
        if chosen is None:
            raise PageNotFound("error.no_model_version", "error.no_model_version_remedy", version=version)
    elif versions:  # the champion's curves first, else the newest version's
        chosen = next((v for v in versions if v["status"] == "champion"), versions[0])
    curves = _curve_sets(chosen) if chosen else None
    sources = ((chosen or {}).get("metrics") or {}).get("sources") or {}
    return {
        "versions": versions,
        "chosen": chosen,
        "curves": curves,
        "sources": sources,
        "sources_differ": sources_differ(sources),
    }


@router.get("/models", response_class=HTMLResponse)
async def models(
    request: Request, principal: Annotated[Principal, Depends(page("models.read"))], version: str = ""
) -> HTMLResponse:
    data = await run_in_threadpool(_models, settings_of(request), version.strip())
    return await render(request, "models.html", principal, active="models", **data)
