"""A record an officer has taken is worked by that officer, or by a supervisor (decision 0091).

The reviewer's steps, over HTTP: ``hkiaoff`` takes an item; another targeting officer of the same
office overrode its lane (200) and recorded its inspection result (201). Both are refused now
(409, naming who has it and what to do), and a supervisor (``risk.supervise``) re-assigns or
releases the item, or acts on it, with every step audited and the office rule applied as
``assign`` applies it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from sciti.access import create_user, issue_token, list_entries, permissions_of
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection, RiskOverride, RiskQueueItem
from tests.api.conftest import assert_envelope, bearer, make_client
from tests.risk.engine.test_office_scope import _same_as_unknown, item, office, queue_items


@pytest.fixture(scope="module")
def client(kcs):
    with make_client(kcs) as c:
        yield c


def person(
    settings, roles: list[str], office_code: str | None, *, disabled: bool = False
) -> tuple[str, dict[str, str]]:
    name = f"{roles[0][:6]}-{uuid.uuid4().hex[:8]}"
    with session_scope(settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, name, roles, office_code=office_code, service=True)
        token = bearer(issue_token(session, user, 60).token)
        user.disabled = disabled
        return name, token


def today() -> str:
    return str(datetime.now(UTC).date())


def override(client, aid: str, headers, lane: str = "green"):
    body = {"lane": lane, "reason": "documents suffice"}
    return client.post(f"/api/v1/risk/queue/{aid}/override", headers=headers, json=body)


def inspect(client, aid: str, headers, outcome: str = "no_discrepancy"):
    body = {"assessment_id": aid, "outcome": outcome, "inspected_on": today()}
    return client.post("/api/v1/risk/inspections", headers=headers, json=body)


def take(client, aid: str, headers):
    return client.post(f"/api/v1/risk/queue/{aid}/assign", headers=headers)


def reassign(client, aid: str, headers, to: str, reason: str | None = None):
    body = {"to": to} | ({"reason": reason} if reason else {})
    return client.post(f"/api/v1/risk/queue/{aid}/reassign", headers=headers, json=body)


def release(client, aid: str, headers):
    return client.post(f"/api/v1/risk/queue/{aid}/release", headers=headers)


@pytest.fixture
def taken(kcs, client):
    """An item of a fresh office taken by its officer: (office, item, taker, taker's headers)."""
    mine = office()
    (aid,) = queue_items(kcs, [mine])
    name, headers = person(kcs, ["targeting_officer"], mine)
    assert take(client, aid, headers).status_code == 200
    return mine, aid, name, headers


def test_only_supervisors_hold_the_supervisor_power() -> None:
    assert "risk.supervise" in permissions_of(["supervisor"])
    for role in ("targeting_officer", "analyst", "administrator", "viewer", "clearance_system"):
        assert "risk.supervise" not in permissions_of([role]), role


def test_another_officer_cannot_override_or_record_a_result_on_a_taken_item(kcs, client, taken) -> None:
    mine, aid, taker, _ = taken
    _, other = person(kcs, ["targeting_officer"], mine)
    for response in (override(client, aid, other), inspect(client, aid, other)):
        err = assert_envelope(response, 409, "conflict")
        assert f"taken by {taker}" in err["message"] and "supervisor" in err["message"]
        assert taker in err["remedy"] and "re-assign" in err["remedy"]
        assert err["details"]["assigned_to"] == taker
    after = item(kcs, aid)
    assert (after.lane, after.status, after.assigned_to) == ("red", "assigned", taker), "nothing changed"
    with session_scope(kcs.resolved_ops_db_url) as session:
        assert not session.scalars(select(RiskOverride).where(RiskOverride.assessment_id == aid)).all()
        assert not session.scalars(select(RiskInspection).where(RiskInspection.assessment_id == aid)).all()


def test_the_taker_works_the_item(client, taken) -> None:
    """Control: the taker's own work goes through."""
    _, aid, taker, headers = taken
    assert override(client, aid, headers, "yellow").json()["lane"] == "yellow"
    assert inspect(client, aid, headers).status_code == 201


def test_a_supervisor_acts_on_an_item_someone_else_has_taken(kcs, client, taken) -> None:
    """Control: as before the change, a supervisor's work goes through (now by ``risk.supervise``)."""
    mine, aid, _, _ = taken
    _, sup = person(kcs, ["supervisor"], mine)
    assert override(client, aid, sup, "yellow").status_code == 200
    done = inspect(client, aid, sup, "seizure")
    assert done.status_code == 201, done.text
    assert item(kcs, aid).status == "done"


def test_an_open_item_is_still_anyones_to_work(kcs, client) -> None:
    """Control: nobody has taken it, so any officer of its office may act on it."""
    mine = office()
    (aid,) = queue_items(kcs, [mine])
    _, officer = person(kcs, ["targeting_officer"], mine)
    assert override(client, aid, officer, "yellow").status_code == 200
    assert inspect(client, aid, officer).status_code == 201


def test_a_result_through_a_superseded_assessment_respects_the_newer_items_taker(kcs, client) -> None:
    """A result sent to a superseded assessment closes the record's newer item: if someone has
    taken that one, the result is theirs (or a supervisor's) to record."""
    mine = office()
    old, new = queue_items(kcs, [mine, mine])
    with session_scope(kcs.resolved_ops_db_url) as session:
        a, b = session.get(RiskQueueItem, old), session.get(RiskQueueItem, new)
        a.status, a.newer_assessment_id = "superseded", new
        session.flush()  # one open item per record: the old one leaves before the new one joins
        b.record_id = a.record_id
    taker, headers = person(kcs, ["targeting_officer"], mine)
    assert take(client, new, headers).status_code == 200
    _, other = person(kcs, ["targeting_officer"], mine)
    err = assert_envelope(inspect(client, old, other), 409, "conflict")
    assert f"taken by {taker}" in err["message"]
    assert item(kcs, new).status == "assigned"
    assert inspect(client, old, headers).status_code == 201  # the taker may
    assert item(kcs, new).status == "done"


def test_a_supervisor_reassigns_a_taken_item_and_it_is_audited(kcs, client, taken) -> None:
    mine, aid, taker, taker_headers = taken
    boss, sup = person(kcs, ["supervisor"], mine)
    newcomer, newcomer_headers = person(kcs, ["targeting_officer"], mine)
    moved = reassign(client, aid, sup, newcomer, "hkiaoff is off sick")
    assert moved.status_code == 200, moved.text
    assert (moved.json()["assigned_to"], moved.json()["status"]) == (newcomer, "assigned")
    # The item is the newcomer's now: the former taker is refused, the newcomer works it.
    assert (
        f"taken by {newcomer}"
        in assert_envelope(override(client, aid, taker_headers), 409, "conflict")["message"]
    )
    assert override(client, aid, newcomer_headers, "yellow").status_code == 200
    with session_scope(kcs.resolved_ops_db_url) as session:
        (entry,) = list_entries(session, actor=boss, action="risk.reassign")
    assert entry.target == f"assessment:{aid}" and entry.outcome == "ok"
    assert entry.details == {"from": taker, "to": newcomer, "reason": "hkiaoff is off sick"}


def test_a_targeting_officer_may_not_reassign(kcs, client, taken) -> None:
    mine, aid, _, _ = taken
    other, headers = person(kcs, ["targeting_officer"], mine)
    assert_envelope(reassign(client, aid, headers, other), 403, "forbidden")


@pytest.mark.parametrize("who", ["nobody", "analyst", "elsewhere", "disabled"])
def test_reassigning_to_someone_who_cannot_work_the_item_is_refused(kcs, client, taken, who) -> None:
    mine, aid, taker, _ = taken
    _, sup = person(kcs, ["supervisor"], mine)
    to = {
        "nobody": lambda: "no-such-account",
        "analyst": lambda: person(kcs, ["analyst"], mine)[0],
        "elsewhere": lambda: person(kcs, ["targeting_officer"], office())[0],
        "disabled": lambda: person(kcs, ["targeting_officer"], mine, disabled=True)[0],
    }[who]()
    err = assert_envelope(reassign(client, aid, sup, to), 422, "invalid_input")
    assert err["details"]["field"] == "to"
    assert item(kcs, aid).assigned_to == taker


def test_release_is_for_the_taker_or_a_supervisor(kcs, client, taken) -> None:
    mine, aid, taker, headers = taken
    _, other = person(kcs, ["targeting_officer"], mine)
    err = assert_envelope(release(client, aid, other), 409, "conflict")
    assert f"taken by {taker}" in err["message"]
    freed = release(client, aid, headers)
    assert (freed.json()["status"], freed.json()["assigned_to"]) == ("open", None)
    assert_envelope(release(client, aid, headers), 409, "conflict")  # nobody has it now
    assert take(client, aid, other).status_code == 200  # back on the queue: anyone may take it
    boss, sup = person(kcs, ["supervisor"], mine)
    assert release(client, aid, sup).json()["assigned_to"] is None
    with session_scope(kcs.resolved_ops_db_url) as session:
        (entry,) = list_entries(session, actor=boss, action="risk.release")
    assert entry.details["from"] != boss and entry.target == f"assessment:{aid}"


def test_a_supervisor_may_also_dispatch_an_open_item(kcs, client) -> None:
    mine = office()
    (aid,) = queue_items(kcs, [mine])
    _, sup = person(kcs, ["supervisor"], mine)
    officer, _ = person(kcs, ["targeting_officer"], mine)
    assert reassign(client, aid, sup, officer).json()["assigned_to"] == officer


def test_another_offices_item_is_unknown_to_reassign_and_release_and_audited(kcs, client, taken) -> None:
    """As ``assign``: 404 exactly as for an unknown id, nothing changed, audited as denied."""
    _, aid, taker, _ = taken
    boss, sup = person(kcs, ["supervisor"], office())
    for action, call in (("risk.reassign", reassign), ("risk.release", release)):
        args = (boss,) if call is reassign else ()
        refused, unknown = call(client, aid, sup, *args), call(client, "UNKNOWN-ID", sup, *args)
        assert_envelope(refused, 404, "not_found")
        _same_as_unknown(refused, unknown)
        with session_scope(kcs.resolved_ops_db_url) as session:
            (entry,) = list_entries(session, actor=boss, action=action)
        assert (entry.outcome, entry.target) == ("denied", f"assessment:{aid}")
    assert item(kcs, aid).assigned_to == taker


def test_a_closed_item_is_not_reassigned(kcs, client, taken) -> None:
    mine, aid, _, headers = taken
    assert inspect(client, aid, headers).status_code == 201
    officer, _ = person(kcs, ["targeting_officer"], mine)
    _, sup = person(kcs, ["supervisor"], mine)
    assert "closed" in assert_envelope(reassign(client, aid, sup, officer), 409, "conflict")["message"]
