"""The record page (factors shown once, one lake connection), the models page's evaluation curves,
and personal data on screen and in exports: masked for every role until a person with
``personal.unmask`` unmasks it for a stated purpose, which the audit trail records."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from sciti.access import list_entries
from sciti.lake import open_lake
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.model_tables import ModelVersion
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.models import list_versions, train
from tests.web.conftest import PEOPLE

# Personal data of private persons, planted in the web instance (KCS itself has none).
PARTY_NAME = "Chan Tai Man"
PARTY_PHONE = "+852 9123 4567"
PARTY_STREET = "12 Nathan Road"
PASSENGER = {"surname": "Wong", "given_names": "Siu Ming", "document_number": "K12345678"}
BIRTH = date(1980, 5, 4)
CLEAR = [PARTY_NAME, PARTY_PHONE, PARTY_STREET, PASSENGER["document_number"], "1980-05-04"]
# Every person who may open the record page or the SQL workbench; none sees personal data in clear.
STAFF = sorted(set(PEOPLE) - {"vic", "ana"})  # ana logs in with a one-time code: see test_browser
SQL = (
    "SELECT p.name, p.phone, p.street, s.surname, s.given_names, s.document_number, s.date_of_birth "
    "FROM std.declaration_parties p, std.passengers s WHERE p.parent_record_id = {rid}"
)


def _csrf(client, url: str = "/ui/") -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get(url).text).group(1)


@pytest.fixture(scope="module")
def planted(web_settings) -> dict:
    """A private person as a party of the top queued declaration, and a passenger."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        top = s.scalars(select(RiskQueueItem).order_by(RiskQueueItem.score.desc()).limit(1)).one()
        assessment_id, record_id = top.assessment_id, top.record_id
    lake = open_lake(web_settings.resolved_catalog_uri, web_settings.resolved_warehouse)
    now = datetime.now(UTC)
    common = {"source": "test", "batch_id": "planted", "locator": "test:1", "ingested_at": now}
    party = get_kind("declaration_party")
    row = {
        **common,
        "record_id": "planted-party-1",
        "parent_record_id": record_id,
        "declaration_id": "planted",
        "declaration_version": 1,
        "role": "consignee",
        "sequence": 1,
        "name": PARTY_NAME,
        "street": PARTY_STREET,
        "city": "Kowloon",
        "country": "HK",
        "phone": PARTY_PHONE,
    }
    lake.ensure_table(party.ident, party.arrow_schema())
    lake.append(party.ident, pa.Table.from_pylist([row], schema=party.arrow_schema()))
    passenger = get_kind("passenger")
    prow = {
        **common,
        "record_id": "planted-passenger-1",
        "record_ref": "P1",
        "voyage_id": "CX123",
        "date_of_birth": BIRTH,
        **PASSENGER,
    }
    lake.ensure_table(passenger.ident, passenger.arrow_schema())
    lake.append(passenger.ident, pa.Table.from_pylist([prow], schema=passenger.arrow_schema()))
    return {"assessment_id": assessment_id, "record_id": record_id}


def _no_clear_values(text: str) -> None:
    for value in CLEAR:
        assert value not in text, value
    assert not re.search(r"\bWong\b", text) and "Siu Ming" not in text


# --- the record page ------------------------------------------------------------------------------


def test_record_lists_the_models_factors_once(as_user, planted):
    page = as_user("tom").get(f"/ui/risk/records/{planted['assessment_id']}")
    assert page.status_code == 200
    factors = re.search(r'<ul class="factors" id="factors">(.*?)</ul>', page.text, re.S)
    assert factors, "the top record was scored by the model: its factors are listed"
    texts = [html.unescape(t) for t in re.findall(r"<li>(.*?)</li>", factors.group(1))]
    assert texts and page.text.count('id="factors-chart"') == 1
    shown = html.unescape(page.text)
    for text in texts:
        assert shown.count(text) == 1, f"factor {text!r} is shown more than once"
    reasons = re.search(r'<ul id="reasons">(.*?)</ul>', page.text, re.S).group(1)
    assert "Model " in reasons  # the model's score line stays among the reasons


@pytest.mark.parametrize("person", ["tom", "sue"])
def test_record_page_masks_personal_data(as_user, planted, person):
    page = as_user(person).get(f"/ui/risk/records/{planted['assessment_id']}")
    assert page.status_code == 200 and 'id="parties"' in page.text
    _no_clear_values(page.text)
    assert "C*** T** M**" in page.text  # the name as initials
    assert "***" in page.text and "pn:" in page.text  # street redacted, phone pseudonymised


def test_unmask_on_the_record_page_shows_clear_values_and_is_audited(as_user, web_settings, planted):
    sue = as_user("sue")
    url = f"/ui/risk/records/{planted['assessment_id']}"
    assert 'id="unmask-form"' in sue.get(url).text
    token = _csrf(sue, url)
    refused = sue.post(f"{url}/unmask", data={"purpose": "", "csrf_token": token})
    assert refused.status_code == 403 and PARTY_NAME not in refused.text  # no purpose, no unmask
    assert "stated purpose" in refused.text
    shown = sue.post(f"{url}/unmask", data={"purpose": "case 2026-114: identify", "csrf_token": token})
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    for value in (PARTY_NAME, PARTY_PHONE, PARTY_STREET):
        assert value in html.unescape(shown.text)
    assert 'id="unmasked-note"' in shown.text
    with session_scope(web_settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, actor="sue", action="unmask", limit=1)
    assert entry.purpose == "case 2026-114: identify" and entry.outcome == "ok"
    assert entry.details["record_id"] == planted["record_id"] and entry.details["via"] == "web"
    assert "name" in entry.details["personal_unmasked"]["std.declaration_parties"]
    assert PARTY_NAME not in str(entry.details)  # the trail says which fields, never the values


def test_a_role_without_unmask_cannot_unmask_on_the_record_page(as_user, planted):
    dee = as_user("dee")  # data engineers hold neither the record page nor personal.unmask
    url = f"/ui/risk/records/{planted['assessment_id']}"
    response = dee.post(f"{url}/unmask", data={"purpose": "curious", "csrf_token": _csrf(dee)})
    assert response.status_code == 403 and PARTY_NAME not in response.text


# --- the queue page -------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["tom", "sue"])
def test_queue_page_shows_no_personal_data(as_user, planted, person):
    page = as_user(person).get("/ui/risk/queue")
    assert page.status_code == 200 and 'id="queue-table"' in page.text
    _no_clear_values(page.text)


# --- the SQL workbench: results and exports ----------------------------------------------------------


@pytest.mark.parametrize("person", STAFF)
def test_workbench_results_mask_personal_data(as_user, planted, person):
    client = as_user(person)
    sql = SQL.format(rid=f"'{planted['record_id']}'")
    result = client.post("/ui/sql/run", data={"sql": sql, "csrf_token": _csrf(client)})
    assert result.status_code == 200
    assert 'id="sql-error"' not in result.text, result.text[:500]
    _no_clear_values(result.text)
    assert "C*** T** M**" in result.text and "W***" in result.text and "1980-01-01" in result.text


def _export(client, sql: str, fmt: str, **extra) -> bytes:
    data = {"sql": sql, "format": fmt, "csrf_token": _csrf(client, "/ui/sql"), **extra}
    response = client.post("/ui/sql/export", data=data)
    assert response.status_code == 200, response.text[:300]
    return response.content


def _rows(content: bytes, fmt: str) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    return [{k: str(v) for k, v in r.items()} for r in pq.read_table(io.BytesIO(content)).to_pylist()]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("person", ["tom", "dee"])
def test_exports_mask_personal_data(as_user, planted, person, fmt):
    sql = SQL.format(rid=f"'{planted['record_id']}'")
    (row,) = _rows(_export(as_user(person), sql, fmt, purpose="weekly report"), fmt)
    assert row["name"] == "C*** T** M**" and row["surname"] == "W***"
    assert row["phone"].startswith("pn:") and row["document_number"].startswith("pn:")
    assert row["street"] == "***" and row["date_of_birth"].startswith("1980-01-01")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_unmasked_export_shows_clear_values_and_is_audited(as_user, web_settings, planted, fmt):
    sql = SQL.format(rid=f"'{planted['record_id']}'")
    purpose = f"case 2026-115: {fmt}"
    (row,) = _rows(_export(as_user("tom"), sql, fmt, purpose=purpose, unmask="true"), fmt)
    assert row["name"] == PARTY_NAME and row["phone"] == PARTY_PHONE
    assert row["document_number"] == PASSENGER["document_number"] and row["date_of_birth"].startswith(
        "1980-05-04"
    )
    with session_scope(web_settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, actor="tom", action="export", limit=1)
    assert entry.purpose == purpose and entry.details["unmask"] is True
    assert set(entry.details["personal_unmasked"]) == {"std.declaration_parties", "std.passengers"}


def test_unmask_needs_the_permission_and_a_purpose_in_the_workbench(as_user, planted):
    sql = SQL.format(rid=f"'{planted['record_id']}'")
    dee = as_user("dee")  # data engineers may export, not unmask
    data = {
        "sql": sql,
        "format": "csv",
        "unmask": "true",
        "purpose": "x-check",
        "csrf_token": _csrf(dee, "/ui/sql"),
    }
    refused = dee.post("/ui/sql/export", data=data)
    assert refused.status_code == 403 and PARTY_NAME not in refused.text
    tom = as_user("tom")
    data = {"sql": sql, "format": "csv", "unmask": "true", "purpose": "", "csrf_token": _csrf(tom, "/ui/sql")}
    no_purpose = tom.post("/ui/sql/export", data=data)
    assert no_purpose.status_code != 200 and PARTY_NAME not in no_purpose.text
    run = tom.post(
        "/ui/sql/run", data={"sql": sql, "unmask": "true", "purpose": "case 9", "csrf_token": _csrf(tom)}
    )
    assert PARTY_NAME in html.unescape(run.text) and PARTY_PHONE in html.unescape(run.text)


# --- the models page --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(web_settings) -> dict:
    """A registered model trained from the web instance's lake (its entry carries the curves)."""
    return train(web_settings, "declaration", actor="ana", params={"num_boost_round": 20})


def test_models_page_draws_the_curves_recorded_at_training(as_user, trained):
    curves = trained["metrics"]["validation"]["curves"]
    assert 0 < len(curves["precision_at_k"]) <= 101 and len(curves["roc"]) <= 101
    assert [k for k, _ in curves["precision_at_k"]][:3] == [1.0, 2.0, 3.0]
    page = as_user("dee").get(f"/ui/models?version={trained['version']}")
    assert page.status_code == 200 and 'id="curves"' in page.text and 'id="no-curves"' not in page.text
    charts = dict(re.findall(r'data-curve="(\w+)"\s+data-chart=\'([^\']+)\'', page.text))
    assert set(charts) == {"precision_at_k", "roc", "precision_recall"}
    import json

    drawn = json.loads(html.unescape(charts["roc"]))
    assert drawn["kind"] == "xy" and drawn["series"][0]["data"] == curves["roc"]


def test_models_page_says_which_source_systems_a_version_learnt_from(as_user, web_settings, trained):
    page = as_user("dee").get(f"/ui/models?version={trained['version']}")
    sources = trained["metrics"]["sources"]
    assert 'id="sources"' in page.text and all(src in page.text for src in sources)
    assert 'id="sources-differ"' not in page.text  # one administration's records (KCS)
    mixed = train(web_settings, "declaration", actor="ana", params={"num_boost_round": 5})
    other = {"rows": 9_543, "label_rate": 0.9}
    with session_scope(web_settings.resolved_ops_db_url) as s:  # as if another system's rows were in
        row = s.get(ModelVersion, mixed["version"])
        row.metrics = {**row.metrics, "sources": {**sources, "demo-clearance": other}}
    page = as_user("dee").get(f"/ui/models?version={mixed['version']}")
    assert "demo-clearance: 9,543 (90 %)" in page.text and 'id="sources-differ"' in page.text
    assert "may have learnt which system a record came from" in page.text


def test_an_older_version_without_curves_says_so(as_user, web_settings, trained):
    older = train(web_settings, "declaration", actor="ana", params={"num_boost_round": 5})
    with session_scope(web_settings.resolved_ops_db_url) as s:  # as entries written before curves
        row = s.get(ModelVersion, older["version"])
        metrics = dict(row.metrics)
        metrics["validation"] = {k: v for k, v in metrics["validation"].items() if k != "curves"}
        metrics.pop("validation_random", None)
        row.metrics = metrics
    assert older["version"] in {v["version"] for v in list_versions(web_settings)}
    page = as_user("tom").get(f"/ui/models?version={older['version']}")
    assert page.status_code == 200 and 'id="no-curves"' in page.text
    assert "No curves recorded for this version" in page.text and "data-curve=" not in page.text
    assert as_user("tom").get("/ui/models?version=no-such-version").status_code == 404
