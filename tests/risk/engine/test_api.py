"""The risk API end to end on the KCS instance: assess, 422s, queue pages, work, feedback, report."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine import Flusher, RiskService
from sciti.risk.engine.flusher import pending
from sciti.risk.engine.reasons import english
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.risk.engine.conftest import approve
from tests.risk.engine.test_store import heavy_cheap

# An inspection is dated on or after its assessment (a day of slack for time zones; decision 0089).


def today() -> date:
    """Taken when asked, not at import: a run that passes midnight (UTC) assesses on the next day."""
    return datetime.now(UTC).date()


def yesterday() -> date:
    return today() - timedelta(days=1)


def settled(settings) -> None:
    """Every assessment made so far is in the lake. A pass of our own is not enough: the service's
    background flusher may hold a claim on the last rows, mid-write, and a second flusher skips
    claimed rows; so wait for the outbox to be empty as well."""
    Flusher(settings).flush()
    deadline = time.monotonic() + 60
    while pending(settings.resolved_ops_db_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pending(settings.resolved_ops_db_url) == 0, "the outbox did not empty within 60 s"


@pytest.fixture(scope="module")
def api(kcs, kcs_model):
    from sciti.risk.engine import Assessor
    from tests.risk.engine.conftest import with_model

    client = make_client(kcs)
    assessor = with_model(Assessor.load(kcs, kinds=("declaration",)), kcs_model)
    # No compliance sample: a sampled record's inspection counts as random, not as the override
    # (records here get new ids each run, so a sample share would make the outcome a lottery).
    assessor.policy = dataclasses.replace(assessor.policy, sample_share=0.0)
    svc = RiskService(kcs, assessor)
    client.app.state.risk_service = svc  # the champion of this test world (no registry needed)
    tokens = token_factory(kcs)
    yield client, tokens
    svc.stop()


def test_assess_one_declaration(api) -> None:
    client, tokens = api
    (record,) = heavy_cheap("API1")
    r = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": record},
                    headers=bearer(tokens("clearance_system")))  # fmt: skip
    assert r.status_code == 200, r.text
    (a,) = r.json()["assessments"]
    assert a["lane"] == "red" and a["rule_ids"] == ["T-HEAVY-CHEAP"]
    assert a["model_version"] == "declaration-test-1" and a["model_score"] is not None
    assert a["factors"] and all(f["text"] for f in a["factors"])
    assert a["reasons"][0].startswith(
        "Item 1: 30000.0 kg declared at 0.01 per kg (rule T-HEAVY-CHEAP v1, lane red)"
    )
    assert a["subject_ref"] == f"{record['declaration_id']}/1"
    # Each reason as its code and values, line for line (decision 0107).
    assert len(a["reason_codes"]) == len(a["reasons"])
    hit = {"code": "rule_hit", "item": 1, "rule": "T-HEAVY-CHEAP", "version": 1, "weight": 0.0, "lane": "red",
           "text": "30000.0 kg declared at 0.01 per kg"}  # fmt: skip
    assert a["reason_codes"][0] == hit
    texts = {f["feature"]: f["text"] for f in a["factors"]}
    assert [english(c, texts.get(c.get("feature"))) for c in a["reason_codes"]] == a["reasons"]


def test_assess_a_batch_and_unknown_codes(api) -> None:
    client, tokens = api
    records = heavy_cheap("API2", 3)
    records[1]["items"][0]["hs_code"] = "999999"  # not in the HS nomenclature
    records[1]["items"][0]["country_of_origin"] = "QQ"
    r = client.post("/api/v1/risk/assess", json={"kind": "declaration", "records": records},
                    headers=bearer(tokens("targeting_officer")))  # fmt: skip
    assert r.status_code == 200, r.text
    answers = r.json()["assessments"]
    assert [a["subject_ref"].split("/")[0] for a in answers] == [x["declaration_id"] for x in records]
    flagged = answers[1]
    assert flagged["unknown_codes"], flagged
    assert any("Unknown code in" in reason for reason in flagged["reasons"])
    assert not answers[0]["unknown_codes"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1, "items": []}}, "items"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1}}, "items"),
        ({"kind": "declaration", "record": {"version": 1, "items": [{"item_number": 1}]}}, "declaration_id"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1,
                                            "items": [{"item_number": 1, "net_mass_kg": "heavy"}]}},
         "net_mass_kg"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1, "hs_cod": "1",
                                            "items": [{"item_number": 1}]}}, "hs_cod"),
        ({"kind": "spaceship", "record": {}}, "kind"),
        ({"kind": "currency_declaration", "record": {"declaration_number": "C1"}}, "declared_at"),
        # Longer than the officers' queue holds (the database would refuse the whole commit).
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1, "office_code": "O" * 33,
                                            "items": [{"item_number": 1}]}}, "office_code"),
        ({"kind": "declaration", "record": {"declaration_id": "D" * 71, "version": 1,
                                            "items": [{"item_number": 1}]}}, "declaration_id"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1,
                                            "items": [{"item_number": 1, "net_mass_kg": -5}]}},
         "net_mass_kg"),
        ({"kind": "currency_declaration", "record": {"declaration_number": "C1", "amount": -9000,
                                                     "declared_at": "2026-01-01T00:00:00Z"}}, "amount"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 10**30,
                                            "items": [{"item_number": 1}]}}, "version"),
        ({"kind": "declaration", "record": {"declaration_id": "X", "version": 1, "record_id": "r" * 65,
                                            "items": [{"item_number": 1}]}}, "record_id"),
        ({"kind": "currency_declaration", "record": {"declaration_number": "C" * 71,
                                                     "declared_at": "2026-01-01T00:00:00Z"}},
         "declaration_number"),
    ],
)  # fmt: skip
def test_malformed_requests_get_422_naming_the_field(api, body, field) -> None:
    client, tokens = api
    r = client.post("/api/v1/risk/assess", json=body, headers=bearer(tokens("clearance_system")))
    err = assert_envelope(r, 422, r.json()["error"]["code"])
    assert field in r.text, err


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_amounts_that_are_not_numbers_get_422(api, number) -> None:
    """Python's JSON reader takes these (1e400 becomes Infinity); no amount or mass is one."""
    client, tokens = api
    body = ('{"kind": "declaration", "record": {"declaration_id": "X", "version": 1, "items": '
            f'[{{"item_number": 1, "net_mass_kg": {number}}}]}}}}')  # fmt: skip
    r = client.post("/api/v1/risk/assess", content=body, headers={
        **bearer(tokens("clearance_system")), "Content-Type": "application/json"})  # fmt: skip
    err = assert_envelope(r, 422, "validation_error")
    assert "net_mass_kg" in r.text and "finite" in r.text, err


def test_queue_pages_by_keyset_without_gaps_or_repeats(api, kcs) -> None:
    client, tokens = api
    rng = random.Random(4)
    now = datetime.now(UTC)
    rows = [
        {"assessment_id": uuid.uuid4().hex, "kind": "declaration", "record_id": uuid.uuid4().hex,
         "subject_ref": f"P{i}", "office_code": "PAGE", "score": float(rng.choice([50, 60, 70.5, 99])),
         "lane": "yellow", "assigned_lane": "yellow", "sampled": False, "reasons": [], "rule_ids": [],
         "model_version": None, "assessed_at": now, "status": "open"}
        for i in range(1000)
    ]  # fmt: skip
    with session_scope(kcs.resolved_ops_db_url) as session:
        session.execute(insert(RiskQueueItem), rows)
    seen: list[tuple[float, str]] = []
    cursor = None
    pages = 0
    while True:
        params = {"office": "PAGE", "limit": 97, **({"cursor": cursor} if cursor else {})}
        r = client.get("/api/v1/risk/queue", params=params, headers=bearer(tokens("analyst")))
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [(i["score"], i["assessment_id"]) for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 11 and len(seen) == 1000 == len(set(seen))
    assert seen == sorted(seen, reverse=True)  # highest score first, ties in a fixed order
    r = client.get("/api/v1/risk/queue", params={"cursor": "nonsense"}, headers=bearer(tokens("analyst")))
    assert_envelope(r, 422, "invalid_input")


def test_take_override_inspect_and_report(api, kcs) -> None:
    client, tokens = api
    officer, other = bearer(tokens("targeting_officer")), bearer(tokens("supervisor"))
    (record,) = heavy_cheap("FLOW")
    (a,) = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": record},
                       headers=officer).json()["assessments"]  # fmt: skip
    queue = client.get("/api/v1/risk/queue", params={"office": "FLOW", "lane": "red"}, headers=officer).json()
    assert [i["assessment_id"] for i in queue["items"]] == [a["assessment_id"]]
    assert queue["items"][0]["reason_codes"] == a["reason_codes"]  # the queue keeps them beside the reasons
    aid = a["assessment_id"]

    taken = client.post(f"/api/v1/risk/queue/{aid}/assign", headers=officer)
    assert taken.status_code == 200 and taken.json()["assigned_to"] == "u-targeting_officer"
    assert_envelope(client.post(f"/api/v1/risk/queue/{aid}/assign", headers=other), 409, "conflict")
    assert_envelope(client.post("/api/v1/risk/queue/nope/assign", headers=officer), 404, "not_found")

    reason = "known importer, docs only"
    changed = client.post(f"/api/v1/risk/queue/{aid}/override", json={"lane": "yellow", "reason": reason},
                          headers=officer)  # fmt: skip
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["lane"], body["assigned_lane"]) == ("yellow", "red")
    assert body["overrides"][0] | {"at": None} == {
        "from_lane": "red", "to_lane": "yellow", "actor": "u-targeting_officer",
        "reason": "known importer, docs only", "at": None,
    }  # fmt: skip

    done = client.post("/api/v1/risk/inspections", headers=officer, json={
        "assessment_id": aid, "outcome": "seizure", "inspected_on": str(today()),
        "revenue_raised": 1200.5})  # fmt: skip
    assert done.status_code == 201, done.text
    result = done.json()
    assert result["fraud"] is True and result["selection_reason"] == "officer"
    assert result["rule_ids"] == ["T-HEAVY-CHEAP"]
    lake = open_lake(kcs.resolved_catalog_uri, kcs.resolved_warehouse)
    (row,) = query(
        lake, f"SELECT * FROM std.inspection_results WHERE inspection_id = '{result['inspection_id']}'"
    ).to_pylist()
    assert (row["target_record_id"], row["fraud"], row["outcome"]) == (a["record_id"], True, "seizure")
    assert row["risk_rule_id"] == "T-HEAVY-CHEAP" and row["source"] == "sciti-risk"
    after = client.get("/api/v1/risk/queue", params={"office": "FLOW"}, headers=officer).json()
    assert after["items"] == []  # done: off the open queue

    approve(kcs, {"id": "T-NEVER", "title": "Never", "kind": "declaration", "when": "net_mass_kg < -1",
                  "weight": 5, "reason": "impossible"})  # fmt: skip
    settled(kcs)
    rep = client.get("/api/v1/risk/report", params={"since": "2026-01-01", "period": "day"},
                     headers=bearer(tokens("viewer"))).json()  # fmt: skip
    by_rule = {r["rule_id"]: r for r in rep["rules"]}
    assert by_rule["T-HEAVY-CHEAP"]["hits"] >= 1
    assert by_rule["T-HEAVY-CHEAP"]["inspected"] >= 1 and by_rule["T-HEAVY-CHEAP"]["frauds"] >= 1
    assert by_rule["T-NEVER"]["flag"] == "never_hit"
    assert any(m["model_version"] == "declaration-test-1" for m in rep["models_over_time"])


def test_status_and_metrics_show_the_buffer_and_model_alerts(api) -> None:
    client, tokens = api
    status = client.get("/api/v1/risk/status", headers=bearer(tokens("viewer"))).json()
    assert status["started"] and status["kinds"]["declaration"]["model_version"] == "declaration-test-1"
    text = client.get("/metrics", headers=bearer(tokens("monitoring"))).text
    for name in (
        "sciti_risk_buffer_received_total",
        "sciti_risk_buffer_pending",
        "sciti_risk_buffer_flushed_total",
    ):
        assert name in text


def test_a_rule_whose_hits_are_all_innocent_is_flagged(api, kcs) -> None:
    from sciti.risk.engine import hit_report

    client, tokens = api
    officer = bearer(tokens("targeting_officer"))
    (record,) = heavy_cheap("FP")
    record["items"][0] |= {
        "net_mass_kg": 100.0,
        "item_price": 50_000.0,
        "country_of_origin": "CN",
        "duty_rate": 13.0,
    }
    (a,) = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": record},
                       headers=officer).json()["assessments"]  # fmt: skip
    assert a["rule_ids"] == ["T-CN-DUTY"] and a["lane"] != "green", a
    result = {"assessment_id": a["assessment_id"], "outcome": "no_discrepancy", "inspected_on": str(today())}
    done = client.post("/api/v1/risk/inspections", headers=officer, json=result)
    assert done.status_code == 201 and done.json()["fraud"] is False
    settled(kcs)
    report = hit_report(kcs, since=datetime(2026, 1, 1).date(), min_inspected=1)
    by_rule = {r["rule_id"]: r for r in report["rules"]}
    assert by_rule["T-CN-DUTY"]["flag"] == "only_false_positives"
    assert by_rule["T-CN-DUTY"]["hit_rate"] == 0.0


@pytest.mark.parametrize(
    ("extra", "fields", "kind"),
    [
        ({}, ["declaration.record", "declaration.records"], "missing"),
        ({"record": "one", "records": "many"}, ["declaration.record", "declaration.records"],
         "record_or_records"),
        ({"records": "none"}, ["declaration.records"], "too_short"),
    ],
)  # fmt: skip
def test_exactly_one_of_record_and_records_is_required(api, extra, fields, kind) -> None:
    client, tokens = api
    (record,) = heavy_cheap("SHAPE")
    sent = {"one": record, "many": [record], "none": []}
    body = {"kind": "declaration"} | {k: sent[v] for k, v in extra.items()}
    r = client.post("/api/v1/risk/assess", json=body, headers=bearer(tokens("clearance_system")))
    err = assert_envelope(r, 422, "validation_error")
    assert [f["field"] for f in err["details"]["fields"]] == fields
    assert {f["type"] for f in err["details"]["fields"]} == {kind}
    assert record["declaration_id"] not in r.text  # the record is not echoed


def test_the_request_schema_says_record_or_records(api) -> None:
    client, _ = api
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schemas["AssessDeclaration"]["oneOf"] == [{"required": ["record"]}, {"required": ["records"]}]


def test_invalid_json_names_the_body_and_the_character(api) -> None:
    client, tokens = api
    headers = bearer(tokens("clearance_system")) | {"Content-Type": "application/json"}
    body = b'{"kind": "declaration", "record": secret-x}'
    r = client.post("/api/v1/risk/assess", content=body, headers=headers)
    err = assert_envelope(r, 422, "validation_error")
    (field,) = err["details"]["fields"]
    assert field == {"location": "body", "field": "body", "type": "json_invalid",
                     "problem": "not valid JSON (at character 34): Expecting value"}  # fmt: skip
    assert "secret" not in r.text


def test_one_result_per_assessment_and_a_retry_is_answered_with_it(api, kcs) -> None:
    from sciti.risk.engine import hit_report

    client, tokens = api
    officer = bearer(tokens("targeting_officer"))
    (record,) = heavy_cheap("ONCE")
    (a,) = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": record},
                       headers=officer).json()["assessments"]  # fmt: skip
    result = {"assessment_id": a["assessment_id"], "outcome": "discrepancy", "inspected_on": str(yesterday()),
              "inspection_type": "documentary", "revenue_raised": 300.0,
              "findings": "undervalued"}  # fmt: skip
    first = client.post("/api/v1/risk/inspections", headers=officer, json=result)
    assert first.status_code == 201, first.text
    stored = first.json()

    for retry in (result, result | {"inspection_id": stored["inspection_id"]}):
        again = client.post("/api/v1/risk/inspections", headers=bearer(tokens("supervisor")), json=retry)
        assert again.status_code == 200, again.text
        assert again.json() == stored

    for changed in (
        {"outcome": "seizure"},  # a different result that agrees with itself (decision 0089)
        {"inspection_type": "physical"},  # kept in the lake row only
        {"inspection_id": "INS-OTHER-ONE"},
        {"fraud": False},
    ):
        err = assert_envelope(client.post("/api/v1/risk/inspections", headers=officer,
                                          json=result | changed), 409, "conflict")  # fmt: skip
        assert "already recorded" in err["message"] and stored["inspection_id"] in err["message"]
        assert err["details"]["inspection_id"] == stored["inspection_id"] and err["remedy"]

    with session_scope(kcs.resolved_ops_db_url) as session:
        rows = session.scalars(
            select(RiskInspection).where(RiskInspection.assessment_id == a["assessment_id"])
        )
        assert len(list(rows)) == 1
    lake = open_lake(kcs.resolved_catalog_uri, kcs.resolved_warehouse)
    day = yesterday()
    (n,) = query(lake, f"SELECT count(*) FROM std.inspection_results WHERE inspected_on = DATE '{day}'"
                 ).column(0).to_pylist()  # fmt: skip
    assert n == 1
    report = hit_report(kcs, since=yesterday(), until=today(), period="day")
    (line,) = [r for r in report["rules_over_time"] if r["rule_id"] == "T-HEAVY-CHEAP"]
    assert (line["inspected"], line["frauds"]) == (1, 1)
