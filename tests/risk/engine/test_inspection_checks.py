"""Inspection results are checked before they become training labels (decision 0089).

The review's steps over HTTP: a revenue the lake cannot hold (NaN, Infinity, 1e300) was a 500; a
negative revenue, an unknown field, a date in 2099 or 1900, and an outcome that contradicts the
fraud label were stored; a superseded assessment took a result that contradicted the one recorded
for the record's current assessment. Each is now a field-level 422 or a 409, and nothing is stored.
"""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from sciti.access import create_user, issue_token
from sciti.api.routers.risk import InspectionIn
from sciti.errors import InvalidInput
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskQueueItem
from sciti.risk.engine.feedback import (
    OUTCOMES,
    REVENUE_LIMIT,
    InspectionInput,
    check_inspection,
    fraud_of,
    record_inspection,
)
from tests.api.conftest import assert_envelope, bearer, make_client


def today() -> date:
    """Taken when asked, not at import: a run that passes midnight (UTC) assesses on the next day."""
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def client(kcs):
    with make_client(kcs) as c:
        yield c


@pytest.fixture(scope="module")
def officer(kcs) -> dict[str, str]:
    with session_scope(kcs.resolved_ops_db_url) as session:
        user, _ = create_user(session, f"insp-{uuid.uuid4().hex[:8]}", ["targeting_officer"], service=True)
        return bearer(issue_token(session, user, 60).token)


def queued(settings, *, record_id: str | None = None, status: str = "open", newer: str | None = None,
           assessed_at: datetime | None = None) -> str:  # fmt: skip
    """A red-lane queue item of a record of its own (or of ``record_id``)."""
    aid = uuid.uuid4().hex
    row = {"assessment_id": aid, "kind": "declaration", "record_id": record_id or uuid.uuid4().hex,
           "subject_ref": f"INSP-{aid[:6]}/1", "office_code": "INSP", "score": 90.0, "lane": "red",
           "assigned_lane": "red", "sampled": False, "reasons": ["heavy and cheap"], "rule_ids": ["R"],
           "model_version": None, "assessed_at": assessed_at or datetime.now(UTC), "status": status,
           "newer_assessment_id": newer}  # fmt: skip
    with session_scope(settings.resolved_ops_db_url) as session:
        session.execute(insert(RiskQueueItem), [row])
    return aid


def results(settings, assessment_id: str) -> list[RiskInspection]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rows = list(
            session.scalars(select(RiskInspection).where(RiskInspection.assessment_id == assessment_id))
        )
        session.expunge_all()
        return rows


def status_of(settings, assessment_id: str) -> str:
    with session_scope(settings.resolved_ops_db_url) as session:
        return session.get(RiskQueueItem, assessment_id).status


def lake_rows(settings, where: str) -> list[dict]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    return query(lake, f"SELECT * FROM std.inspection_results WHERE {where}").to_pylist()


def post(client, headers, body: dict | str):
    if isinstance(body, str):
        return client.post("/api/v1/risk/inspections", content=body,
                           headers=headers | {"Content-Type": "application/json"})  # fmt: skip
    return client.post("/api/v1/risk/inspections", headers=headers, json=body)


@pytest.mark.parametrize(
    "number", ["NaN", "Infinity", "-Infinity", "1e300", "1e400", "1e14", "100000000000000.5"]
)
def test_a_revenue_the_lake_cannot_hold_is_a_422_not_a_500(kcs, client, officer, number) -> None:
    aid = queued(kcs)
    body = (f'{{"assessment_id": "{aid}", "outcome": "discrepancy", "inspected_on": "{today()}", '
            f'"revenue_raised": {number}}}')  # fmt: skip
    err = assert_envelope(post(client, officer, body), 422, "validation_error")
    assert [f["field"] for f in err["details"]["fields"]] == ["revenue_raised"], err
    assert results(kcs, aid) == [] and status_of(kcs, aid) == "open"


def test_the_revenue_limit_is_the_lake_columns() -> None:
    """decimal(precision, scale) holds values below 10^(precision - scale)."""
    column = get_kind("inspection_result").arrow_schema().field("revenue_raised").type
    assert 10 ** (column.precision - column.scale) == REVENUE_LIMIT


@pytest.mark.parametrize(
    ("revenue", "stored"),
    [
        (99_999_999_999_999.98, Decimal("99999999999999.98")),  # just below the limit
        (0.12345, Decimal("0.1234")),  # beyond the column's 4 places: rounded half to even, as ingest
        (0.12346, Decimal("0.1235")),
        (0, Decimal("0.0000")),
    ],
)
def test_the_largest_and_finest_revenues_are_stored_as_the_lake_keeps_them(
    kcs, client, officer, revenue, stored
) -> None:
    aid = queued(kcs)
    body = {
        "assessment_id": aid,
        "outcome": "discrepancy",
        "inspected_on": str(today()),
        "revenue_raised": revenue,
    }
    done = post(client, officer, body)
    assert done.status_code == 201, done.text
    (row,) = lake_rows(kcs, f"inspection_id = '{done.json()['inspection_id']}'")
    assert row["revenue_raised"] == stored
    assert post(client, officer, body).status_code == 200  # a retry is still recognised


def _tomorrow_but_one() -> str:
    return str(today() + timedelta(days=2))


def resolved(change: dict) -> dict:
    """A change whose dates depend on today is written as callables: resolved when the test runs."""
    return {k: v() if callable(v) else v for k, v in change.items()}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"revenue_raised": -5}, "revenue_raised"),
        ({"zzz": 1}, "zzz"),
        ({"inspected_on": "2099-01-01"}, "inspected_on"),
        ({"inspected_on": _tomorrow_but_one}, "inspected_on"),
        ({"inspected_on": "1900-01-01"}, "inspected_on"),  # before the assessment
        ({"outcome": "not_performed", "fraud": True}, "fraud"),
        ({"outcome": "no_discrepancy", "fraud": True}, "fraud"),
        ({"outcome": "no_discrepancy", "fraud_severity": 2}, "fraud_severity"),
        ({"outcome": "discrepancy", "fraud": True, "fraud_severity": 0}, "fraud_severity"),
        ({"outcome": "discrepancy", "fraud": False, "fraud_severity": 1}, "fraud_severity"),
        ({"outcome": "not_performed", "revenue_raised": 10}, "revenue_raised"),
        ({"outcome": "no_discrepancy", "revenue_raised": 10}, "revenue_raised"),
        ({"outcome": "no_discrepancy", "discrepancy_type": "valuation"}, "discrepancy_type"),
        ({"inspection_id": "I" * 81}, "inspection_id"),  # longer than the operational table keeps
    ],
)  # fmt: skip
def test_a_result_that_cannot_be_a_label_is_refused_naming_the_field(
    kcs, client, officer, change, field
) -> None:
    aid = queued(kcs)
    body = {"assessment_id": aid, "outcome": "discrepancy", "inspected_on": str(today())} | resolved(change)
    r = post(client, officer, body)
    err = assert_envelope(r, 422, "validation_error")
    assert field in [f["field"] for f in err["details"]["fields"]], err
    assert all(f["problem"] for f in err["details"]["fields"])
    assert results(kcs, aid) == [] and status_of(kcs, aid) == "open", "nothing stored, still open"
    assert lake_rows(kcs, f"target_id = 'INSP-{aid[:6]}/1'") == []


def test_a_date_before_the_assessment_says_when_it_was_made(kcs, client, officer) -> None:
    aid = queued(kcs, assessed_at=datetime(2026, 6, 10, 9, tzinfo=UTC))
    body = {"assessment_id": aid, "outcome": "seizure", "inspected_on": "2026-06-08"}
    err = assert_envelope(post(client, officer, body), 422, "validation_error")
    (field,) = err["details"]["fields"]
    assert field["field"] == "inspected_on" and "2026-06-10" in field["problem"], field
    assert "std.inspection_results" in field["problem"]  # where such a result goes instead


@pytest.mark.parametrize(
    ("change", "fraud"),
    [
        ({"inspected_on": lambda: str(today() + timedelta(days=1))}, True),  # an office ahead of UTC
        ({"inspected_on": "2026-06-09"}, True),  # an office behind UTC: the day before, in UTC
        ({"outcome": "discrepancy", "fraud": False}, False),  # an honest error
        ({"outcome": "seizure", "fraud_severity": 2}, True),
        ({"outcome": "discrepancy", "fraud_severity": 0}, False),  # severity says no fraud
        ({"outcome": "referred"}, False),
        ({"outcome": "referred", "fraud": True, "revenue_raised": 10}, True),
        ({"outcome": "no_discrepancy", "fraud": False, "fraud_severity": 0, "revenue_raised": 0}, False),
        ({"outcome": "not_performed", "findings": "container not presented"}, False),
    ],
)  # fmt: skip
def test_results_that_agree_with_themselves_are_stored(kcs, client, officer, change, fraud) -> None:
    aid = queued(kcs, assessed_at=datetime(2026, 6, 10, 1, tzinfo=UTC))
    body = {"assessment_id": aid, "outcome": "seizure", "inspected_on": str(today())} | resolved(change)
    done = post(client, officer, body)
    assert done.status_code == 201, done.text
    assert done.json()["fraud"] is fraud and done.json()["superseded"] is False
    (row,) = lake_rows(kcs, f"inspection_id = '{done.json()['inspection_id']}'")
    assert row["fraud"] is fraud


def test_the_outcomes_are_the_record_kinds_and_the_apis() -> None:
    (field,) = [f for f in get_kind("inspection_result").fields if f.name == "outcome"]
    api = typing.get_args(InspectionIn.model_fields["outcome"].annotation)
    assert list(OUTCOMES) == list(field.values) == list(api)


@pytest.mark.parametrize(
    ("outcome", "allowed"),
    [
        ("no_discrepancy", {False}),
        ("discrepancy", {True, False}),
        ("seizure", {True, False}),
        ("referred", {True, False}),
        ("not_performed", {False}),
    ],
)
def test_the_engine_refuses_what_the_api_refuses(outcome, allowed) -> None:
    """Callers other than the API (the web form posts to it; scripts call the engine) meet the
    same table: a fraud label an outcome cannot have is InvalidInput naming ``fraud``."""
    for fraud in (True, False):
        data = InspectionInput("A", outcome, today(), fraud=fraud)
        if fraud in allowed:
            assert fraud_of(check_inspection(data)) is fraud
        else:
            with pytest.raises(InvalidInput) as caught:
                check_inspection(data)
            assert [f["field"] for f in caught.value.details["fields"]] == ["fraud"]
    with pytest.raises(InvalidInput):
        check_inspection(InspectionInput("A", outcome, today(), revenue_raised=float("nan")))


def test_the_engine_refuses_a_date_before_the_assessment(kcs) -> None:
    aid = queued(kcs, assessed_at=datetime(2026, 6, 10, 9, tzinfo=UTC))
    lake = open_lake(kcs.resolved_catalog_uri, kcs.resolved_warehouse)
    with session_scope(kcs.resolved_ops_db_url) as session, pytest.raises(InvalidInput) as caught:
        record_inspection(
            session, lake, InspectionInput(aid, "seizure", date(1900, 1, 1)), actor="x", scope=None
        )
    assert caught.value.details["fields"][0]["field"] == "inspected_on"
    assert results(kcs, aid) == []


# ---- a superseded assessment ------------------------------------------------------------------


def superseded_pair(settings) -> tuple[str, str, str]:
    """(old, new, record): the record's old item superseded by its newer, open one."""
    record = uuid.uuid4().hex
    new = queued(settings, record_id=record)
    old = queued(settings, record_id=record, status="superseded", newer=new)
    return old, new, record


def test_a_result_for_a_superseded_assessment_is_kept_says_so_and_closes_the_record(
    kcs, client, officer
) -> None:
    old, new, record = superseded_pair(kcs)
    body = {"assessment_id": old, "outcome": "discrepancy", "inspected_on": str(today())}
    done = post(client, officer, body)
    assert done.status_code == 201, done.text
    answer = done.json()
    assert answer["superseded"] is True and answer["newer_assessment_id"] == new
    assert answer["assessment_id"] == old  # linked to the assessment that selected the record
    assert (status_of(kcs, old), status_of(kcs, new)) == ("done", "done")  # nothing left to work
    assert post(client, officer, body).json() == answer  # a retry answers the same

    # The newer assessment's opposite result is refused: one record, one label.
    other = {"assessment_id": new, "outcome": "no_discrepancy", "inspected_on": str(today())}
    err = assert_envelope(post(client, officer, other), 409, "conflict")
    assert answer["inspection_id"] in err["message"] and old in err["message"], err
    assert err["details"]["inspection_id"] == answer["inspection_id"]
    assert results(kcs, new) == []
    rows = lake_rows(kcs, f"target_record_id = '{record}'")
    assert [(r["inspection_id"], r["fraud"]) for r in rows] == [(answer["inspection_id"], True)]


def test_a_superseded_assessment_takes_no_result_once_the_current_one_has_one(kcs, client, officer) -> None:
    old, new, record = superseded_pair(kcs)
    first = post(
        client, officer, {"assessment_id": new, "outcome": "no_discrepancy", "inspected_on": str(today())}
    )
    assert first.status_code == 201 and first.json()["superseded"] is False, first.text
    late = {"assessment_id": old, "outcome": "discrepancy", "inspected_on": str(today())}
    err = assert_envelope(post(client, officer, late), 409, "conflict")
    assert first.json()["inspection_id"] in err["message"]
    assert status_of(kcs, old) == "superseded" and results(kcs, old) == []
    assert [r["fraud"] for r in lake_rows(kcs, f"target_record_id = '{record}'")] == [False]
