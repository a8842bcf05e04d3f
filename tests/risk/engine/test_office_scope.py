"""An account bound to an office sees and works its own office's queue only (decision 0081).

The security review's steps, over HTTP: an office-bound targeting officer lists the queue, takes
and overrides another office's red-lane item and posts an inspection result for it. Each is
answered exactly as for an unknown id (404), changes nothing, and is audited as denied; the same
work on the officer's own office's item goes through.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from sciti.access import create_user, issue_token, list_entries
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskOverride, RiskQueueItem
from tests.api.conftest import assert_envelope, bearer, make_client


@pytest.fixture(scope="module")
def client(kcs):
    with make_client(kcs) as c:
        yield c


def office() -> str:
    return f"O{uuid.uuid4().hex[:8].upper()}"  # offices of this test alone


def token(settings, roles: list[str], office_code: str | None) -> tuple[str, dict[str, str]]:
    name = f"{roles[0]}-{office_code or 'hq'}-{uuid.uuid4().hex[:6]}".lower()
    with session_scope(settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, name, roles, office_code=office_code, service=True)
        return name, bearer(issue_token(session, user, 60).token)


def queue_items(settings, offices: list[str | None], lane: str = "red") -> list[str]:
    now = datetime.now(UTC)
    rows = [
        {"assessment_id": uuid.uuid4().hex, "kind": "declaration", "record_id": uuid.uuid4().hex,
         "subject_ref": f"DECL-{i}/1", "office_code": o, "score": 90.0 - i, "lane": lane,
         "assigned_lane": lane, "sampled": False, "reasons": ["Item 1: heavy and cheap"], "rule_ids": ["R"],
         "model_version": None, "assessed_at": now, "status": "open"}
        for i, o in enumerate(offices)
    ]  # fmt: skip
    with session_scope(settings.resolved_ops_db_url) as session:
        session.execute(insert(RiskQueueItem), rows)
    return [r["assessment_id"] for r in rows]


def item(settings, assessment_id: str) -> RiskQueueItem:
    with session_scope(settings.resolved_ops_db_url) as session:
        found = session.get(RiskQueueItem, assessment_id)
        session.expunge(found)
        return found


def test_the_queue_lists_the_callers_office_only(kcs, client) -> None:
    mine, other = office(), office()
    own = queue_items(kcs, [mine, mine])
    theirs = queue_items(kcs, [other, None])  # an item without an office belongs to no office
    _, officer = token(kcs, ["targeting_officer"], mine)
    listed = client.get("/api/v1/risk/queue", params={"limit": 500}, headers=officer).json()["items"]
    assert {i["office_code"] for i in listed} == {mine}
    assert sorted(i["assessment_id"] for i in listed) == sorted(own)
    # Asking for another office filters within what the caller may see: nothing.
    for status in (None, "open", "superseded"):
        params = {"office": other, **({"status": status} if status else {})}
        assert client.get("/api/v1/risk/queue", params=params, headers=officer).json()["items"] == []
    # Paging by cursor stays inside the office.
    first = client.get("/api/v1/risk/queue", params={"limit": 1}, headers=officer).json()
    rest = client.get("/api/v1/risk/queue", params={"limit": 5, "cursor": first["next_cursor"]},
                      headers=officer).json()  # fmt: skip
    assert [i["assessment_id"] for i in first["items"] + rest["items"]] == own
    # An account without an office (headquarters) sees every office.
    _, hq = token(kcs, ["supervisor"], None)
    everyone = client.get("/api/v1/risk/queue", params={"office": other}, headers=hq).json()["items"]
    assert [i["assessment_id"] for i in everyone] == theirs[:1]


def _work(client, assessment_id: str, headers: dict[str, str]) -> dict[str, object]:
    """Take, override and record a result: what the security review did."""
    return {
        "assign": client.post(f"/api/v1/risk/queue/{assessment_id}/assign", headers=headers),
        "override": client.post(f"/api/v1/risk/queue/{assessment_id}/override", headers=headers,
                                json={"lane": "green", "reason": "looks fine to me"}),
        "inspection": client.post("/api/v1/risk/inspections", headers=headers,
                                  json={"assessment_id": assessment_id, "outcome": "no_discrepancy",
                                        "inspected_on": str(datetime.now(UTC).date())}),
    }  # fmt: skip


def _same_as_unknown(refused, unknown) -> None:
    """Nothing in the answer tells an item of another office from an id that does not exist."""
    a, b = refused.json()["error"], unknown.json()["error"]
    assert refused.status_code == unknown.status_code == 404
    assert {k: v for k, v in a.items() if k != "request_id"} == {
        **{k: v for k, v in b.items() if k != "request_id"},
        "message": b["message"].replace("UNKNOWN-ID", a["details"]["assessment_id"]),
        "details": {"assessment_id": a["details"]["assessment_id"]},
    }


def test_work_on_another_offices_item_is_refused_as_unknown_and_audited(kcs, client) -> None:
    mine, other = office(), office()
    (theirs,) = queue_items(kcs, [other])
    name, offhk = token(kcs, ["targeting_officer"], mine)
    refused = _work(client, theirs, offhk)
    unknown = _work(client, "UNKNOWN-ID", offhk)
    for action, response in refused.items():
        assert_envelope(response, 404, "not_found")
        _same_as_unknown(response, unknown[action])
    after = item(kcs, theirs)
    assert (after.lane, after.status, after.assigned_to) == ("red", "open", None), "nothing changed"
    with session_scope(kcs.resolved_ops_db_url) as session:
        assert not session.scalars(select(RiskOverride).where(RiskOverride.assessment_id == theirs)).all()
        assert not session.scalars(select(RiskInspection).where(RiskInspection.assessment_id == theirs)).all()
        denied = [e for e in list_entries(session, actor=name) if e.outcome == "denied"]
    assert sorted(e.action for e in denied) == ["risk.assign", "risk.inspection", "risk.override"]
    assert {e.target for e in denied} == {f"assessment:{theirs}"}
    assert all(e.details["office"] == mine for e in denied)
    # Unknown ids are not audited as refusals: only real items of another office are.
    assert not any("UNKNOWN-ID" in e.target for e in denied)


def test_an_item_without_an_office_is_not_an_office_bound_accounts(kcs, client) -> None:
    (orphan,) = queue_items(kcs, [None])
    _, officer = token(kcs, ["targeting_officer"], office())
    for response in _work(client, orphan, officer).values():
        assert_envelope(response, 404, "not_found")


def test_the_same_work_on_the_callers_own_office_goes_through(kcs, client) -> None:
    mine = office()
    (own,) = queue_items(kcs, [mine])
    name, officer = token(kcs, ["targeting_officer"], mine)
    done = _work(client, own, officer)
    assert done["assign"].status_code == 200 and done["assign"].json()["assigned_to"] == name
    assert done["override"].status_code == 200 and done["override"].json()["lane"] == "green"
    assert done["inspection"].status_code == 201, done["inspection"].text
    assert item(kcs, own).status == "done"


def test_a_supervisor_of_another_office_cannot_reassign_or_retry_a_result(kcs, client) -> None:
    """A retried result (which answers 200 with the stored one) does not show it to another office."""
    mine, other = office(), office()
    (own,) = queue_items(kcs, [mine])
    _, officer = token(kcs, ["targeting_officer"], mine)
    body = {"assessment_id": own, "outcome": "seizure", "inspected_on": str(datetime.now(UTC).date())}
    assert client.post("/api/v1/risk/inspections", headers=officer, json=body).status_code == 201
    _, elsewhere = token(kcs, ["supervisor"], other)
    again = client.post("/api/v1/risk/inspections", headers=elsewhere, json=body)
    assert_envelope(again, 404, "not_found")
    assert "seizure" not in again.text


def test_superseded_items_of_another_office_do_not_say_so(kcs, client) -> None:
    """A superseded item answers 409 with its successor's id, but only to those who may see it."""
    other = office()
    (old,) = queue_items(kcs, [other])
    with session_scope(kcs.resolved_ops_db_url) as session:
        session.get(RiskQueueItem, old).status = "superseded"
    _, officer = token(kcs, ["targeting_officer"], office())
    assert_envelope(client.post(f"/api/v1/risk/queue/{old}/assign", headers=officer), 404, "not_found")
    _, hq = token(kcs, ["targeting_officer"], None)
    assert_envelope(client.post(f"/api/v1/risk/queue/{old}/assign", headers=hq), 409, "conflict")


@pytest.mark.parametrize(
    ("item_office", "scope", "seen"),
    [("A", None, True), ("A", "A", True), ("A", "B", False), (None, "A", False), (None, None, True)],
)
def test_in_scope(item_office, scope, seen) -> None:
    from sciti.risk.engine import in_scope

    assert in_scope(item_office, scope) is seen


def test_engine_functions_take_the_scope(kcs) -> None:
    """The queue functions have no default scope: every caller says whose queue it reads."""
    from sciti.risk.engine import list_queue, queue_item

    mine = office()
    (own,) = queue_items(kcs, [mine])
    with session_scope(kcs.resolved_ops_db_url) as session:
        with pytest.raises(TypeError):
            list_queue(session)  # type: ignore[call-arg]
        assert [i["assessment_id"] for i in list_queue(session, scope=mine).items] == [own]
        assert queue_item(session, own, scope=mine)["overrides"] == []
        assert queue_item(session, own, scope=office()) is None
