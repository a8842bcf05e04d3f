"""The hit-rate report of an account bound to an office counts that office only (decision 0090):
its assessments' hits, the results posted for its queue items and the acquired results of its
declarations, and the random sample among them. The same through the API, whatever the request
asks, and through ``sciti risk report --user``. An account without an office sees every office.

The data are the KCS declarations and their inspection results (connectors/kcs, offices 40, 20,
30 ...), scored here, and results posted for queue items of two offices and of none.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from sqlalchemy import select

from sciti.access import create_user, issue_token
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine import Assessor, hit_report, score_since
from tests.api.conftest import bearer, make_client
from tests.risk.engine.conftest import build_instance


def window() -> dict[str, date]:
    """KCS inspections are of 2021, its assessments made today: the window holds both. Taken when
    asked, not at import: a run that passes midnight (UTC) makes its assessments on the next day."""
    return {"since": date(2019, 1, 1), "until": datetime.now(UTC).date() + timedelta(days=1)}


MINE, OTHER = "40", "30"  # KCS offices with the most declarations
# Results posted for queue items: (office of the item, fraud, selection reason)
POSTED = [(MINE, True, "risk"), (OTHER, False, "risk"), (OTHER, True, "random"), (None, True, "risk")]


@pytest.fixture(scope="module")
def scored(own_kcs):
    s = own_kcs  # the module's own: results are posted to its queue
    score_since(s, "declaration", assessor=Assessor.load(s, kinds=("declaration",)))
    with session_scope(s.resolved_ops_db_url) as session:
        for office, fraud, reason in POSTED:
            aid = uuid.uuid4().hex
            session.add(
                RiskQueueItem(assessment_id=aid, kind="declaration", record_id=uuid.uuid4().hex,
                              subject_ref="DECL-X/1", office_code=office, score=90.0, lane="red",
                              assigned_lane="red", sampled=reason == "random", rule_ids=["T-CN-DUTY"],
                              status="done")
            )  # fmt: skip
            session.add(
                RiskInspection(inspection_id=f"INS-{aid}", assessment_id=aid, kind="declaration",
                               record_id=uuid.uuid4().hex,
                               outcome="discrepancy" if fraud else "no_discrepancy",
                               fraud=fraud, selection_reason=reason, rule_ids=["T-CN-DUTY"],
                               inspected_on=datetime.now(UTC).date(), actor="tester")
            )  # fmt: skip
    return s


def expected(settings, office: str | None) -> dict:
    """Per rule (hits, inspected, frauds) and the random sample of one office (None: all), worked
    out row by row here from the lake and the operational tables."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    latest: dict[tuple, tuple] = {}
    for a in query(
        lake,
        "SELECT kind, record_id, assessed_at, assessment_id, rule_ids, office_code FROM risk.assessments",
    ).to_pylist():
        key, order = (a["kind"], a["record_id"]), (a["assessed_at"], a["assessment_id"])
        if key not in latest or order > latest[key][0]:
            latest[key] = (order, a["rule_ids"] or [], a["office_code"])
    ours = (lambda o: o == office) if office else (lambda o: True)
    hits, inspected, frauds, sample = Counter(), Counter(), Counter(), Counter()
    for _, rule_ids, o in latest.values():
        if ours(o):
            hits.update(rule_ids)
    records_of: dict[str, list[str]] = {}
    for d in query(lake, "SELECT record_id, declaration_id FROM std.declarations").to_pylist():
        records_of.setdefault(d["declaration_id"], []).append(d["record_id"])
    results = query(
        lake,
        "SELECT declaration_id, inspected_on, fraud, office_code, source FROM std.inspection_results",
    ).to_pylist()
    for r in results:
        if r["source"] == "sciti-risk":
            continue
        found = [latest.get(("declaration", rid)) for rid in records_of.get(r["declaration_id"], [])]
        linked = [f for f in found if f is not None]
        if not linked:
            continue
        _, rule_ids, o = max(linked)
        if ours(o) and (r["office_code"] is None or ours(r["office_code"])):
            for rid in rule_ids:
                inspected[rid] += 1
                frauds[rid] += bool(r["fraud"])
    for o, fraud, reason in POSTED:
        if not ours(o):
            continue
        if reason == "random":
            sample["inspected"] += 1
            sample["frauds"] += fraud
        else:
            inspected["T-CN-DUTY"] += 1
            frauds["T-CN-DUTY"] += fraud
    rules = {rid: (hits[rid], inspected[rid], frauds[rid]) for rid in set(hits) | set(inspected)}
    return {"rules": rules, "sample": (sample["inspected"], sample["frauds"])}


def figures(report: dict) -> dict:
    rules = {r["rule_id"]: (r["hits"], r["inspected"], r["frauds"]) for r in report["rules"]}
    sample = report["compliance_sample"]
    return {"rules": {k: v for k, v in rules.items() if v != (0, 0, 0)}, "sample": (sample["inspected"],
            sample["frauds"])}  # fmt: skip


def test_an_office_counts_its_own_assessments_and_inspections(scored) -> None:
    everyone = hit_report(scored, **window())
    assert figures(everyone) == expected(scored, None)  # control: every office, as before
    for office in (MINE, OTHER):
        mine = hit_report(scored, **window(), office=office)
        assert mine["office"] == office
        assert figures(mine) == expected(scored, office)
        assert figures(mine) != figures(everyone)
    theirs = hit_report(scored, **window(), office=OTHER)
    assert theirs["compliance_sample"]["inspected"] == 1  # the random result posted for OTHER's item
    assert hit_report(scored, **window(), office=MINE)["compliance_sample"]["inspected"] == 0
    assert hit_report(scored, **window(), office=MINE)["inspections"]["posted"] == 1


def test_the_offices_add_up_to_every_office(scored) -> None:
    """Each assessment and result with an office counts in exactly one office's report; those
    without an office (one posted result here) only in the report of every office."""
    lake = open_lake(scored.resolved_catalog_uri, scored.resolved_warehouse)
    offices = query(lake, "SELECT DISTINCT office_code FROM risk.assessments").column(0).to_pylist()
    assert None not in offices and len(offices) > 5
    total: Counter = Counter()
    models: Counter = Counter()
    for office in offices:
        report = hit_report(scored, **window(), office=office)
        for r in report["rules"]:
            total.update({(r["rule_id"], k): r[k] for k in ("hits", "inspected", "frauds")})
        for m in report["models_over_time"]:
            models.update({(m["model_version"], m["period"], k): m[k] for k in ("assessed", "flagged")})
    everyone = hit_report(scored, **window())
    for r in everyone["rules"]:
        unowned = int(r["rule_id"] == "T-CN-DUTY")  # the posted result of an item without an office
        assert total[(r["rule_id"], "hits")] == r["hits"]
        assert total[(r["rule_id"], "inspected")] == r["inspected"] - unowned
    for m in everyone["models_over_time"]:
        assert models[(m["model_version"], m["period"], "assessed")] == m["assessed"]


def token(settings, roles: list[str], office: str | None) -> dict[str, str]:
    name = f"{roles[0]}-{office or 'hq'}-{uuid.uuid4().hex[:6]}".lower()
    with session_scope(settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, name, roles, office_code=office, service=True)
        return bearer(issue_token(session, user, 60).token)


def test_the_api_reports_the_callers_office_and_no_parameter_widens_it(scored) -> None:
    params = {k: v.isoformat() for k, v in window().items()}
    with make_client(scored) as client:
        for roles in (["targeting_officer"], ["viewer"]):
            bound = token(scored, roles, MINE)
            for extra in ({}, {"office": OTHER}, {"office": ""}, {"office_code": OTHER}, {"scope": "all"}):
                r = client.get("/api/v1/risk/report", params=params | extra, headers=bound)
                assert r.status_code == 200, r.text
                assert figures(r.json()) == expected(scored, MINE), extra
                assert r.json()["office"] == MINE
        hq = client.get("/api/v1/risk/report", params=params, headers=token(scored, ["supervisor"], None))
        assert hq.json()["office"] is None and figures(hq.json()) == expected(scored, None)


@pytest.fixture
def cli(scored, monkeypatch, cli_on):
    monkeypatch.delenv("SCITI_USER", raising=False)
    return cli_on(scored)


def test_the_cli_reports_as_the_account_given(cli, scored) -> None:
    with session_scope(scored.resolved_ops_db_url) as session:
        create_user(session, "officer-mine", ["targeting_officer"], office_code=MINE, service=True)
        create_user(session, "engineer-hq", ["data_engineer"], service=True)
    span = window()
    args = ("--since", span["since"].isoformat(), "--until", span["until"].isoformat())
    mine = json.loads(cli("risk", "report", *args, "--json", "--user", "officer-mine"))
    assert mine["office"] == MINE and figures(mine) == expected(scored, MINE)
    assert f"office {MINE}" in cli("risk", "report", *args, "--user", "officer-mine")
    everyone = json.loads(cli("risk", "report", *args, "--json"))  # the operator: every office
    assert everyone["office"] is None and figures(everyone) == expected(scored, None)
    assert "lacks the risk.report permission" in cli("risk", "report", "--user", "engineer-hq", code=1)


def test_posted_results_take_their_queue_items_office(scored) -> None:
    """Control: the fixture's posted results are where the expectations above say."""
    with session_scope(scored.resolved_ops_db_url) as session:
        rows = session.execute(
            select(RiskQueueItem.office_code, RiskInspection.selection_reason).join(
                RiskInspection, RiskInspection.assessment_id == RiskQueueItem.assessment_id
            )
        ).all()
    assert sorted(rows, key=str) == sorted([(o, r) for o, _, r in POSTED], key=str)


def test_a_result_of_another_office_on_our_declaration_counts_for_neither(tmp_path_factory, shared_data):
    """An acquired result is its declaration's office's. One that names an office of its own,
    another (a control made elsewhere), is a row the declaration's office could not read in SQL,
    nor the other office the declaration: only the report of every office counts it."""
    s = build_instance(tmp_path_factory.mktemp("report-crossed") / "instance", shared_data)
    score_since(s, "declaration", assessor=Assessor.load(s, kinds=("declaration",)))
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    (decl,) = query(
        lake,
        f"""SELECT a.record_id, d.declaration_id, a.rule_ids FROM risk.assessments a
            JOIN std.declarations d USING (record_id)
            WHERE a.office_code = '{MINE}' AND len(a.rule_ids) > 0 LIMIT 1""",  # noqa: S608
    ).to_pylist()
    before = {o: hit_report(s, **window(), office=o) for o in (MINE, OTHER, None)}
    kind = get_kind("inspection_result")
    row = {f.name: None for f in kind.arrow_schema()} | {
        "record_id": "crossed-1", "source": "other-system", "batch_id": "b", "ingested_at": datetime.now(UTC),
        "inspection_id": "X-1", "declaration_id": decl["declaration_id"], "inspected_on": date(2021, 2, 1),
        "office_code": OTHER, "outcome": "discrepancy", "fraud": True,
    }  # fmt: skip
    lake.append(kind.ident, pa.Table.from_pylist([row], schema=kind.arrow_schema()))
    after = {o: hit_report(s, **window(), office=o) for o in (MINE, OTHER, None)}
    rule = decl["rule_ids"][0]

    def inspected(report: dict) -> int:
        return next(r["inspected"] for r in report["rules"] if r["rule_id"] == rule)

    assert inspected(after[None]) == inspected(before[None]) + 1
    for office in (MINE, OTHER):
        assert inspected(after[office]) == inspected(before[office])
