"""A record has at most one open queue item: a newer assessment supersedes the older open item,
an item an officer already worked is kept (and told), and the report counts the record once."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from sciti.access import create_user, issue_token
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine import Assessor, Flusher, RiskService, hit_report, list_queue, score_since
from sciti.risk.engine.assessment import Assessment
from sciti.risk.engine.enqueue import committed, enqueue
from sciti.risk.engine.feedback import InspectionInput, record_inspection
from sciti.risk.engine.store import queue_row, write
from sciti.risk.engine.workqueue import assign, override
from sciti.risk.lanes import parse_policy
from tests.api.conftest import assert_envelope, bearer, make_client
from tests.risk.engine.conftest import build_instance
from tests.risk.engine.test_store import POLICY, heavy_cheap


@pytest.fixture
def rules_only(kcs) -> Assessor:
    """Rules alone, no compliance sample: a benign declaration is green, a heavy cheap one red."""
    loaded = Assessor.load(kcs, kinds=("declaration",))
    return Assessor(policy=parse_policy(POLICY), reference=loaded.reference, parts_by_kind=loaded.parts)


def office() -> str:
    return f"S{uuid.uuid4().hex[:10]}"  # one office per test: its queue is that test's alone


def assess_and_store(settings, assessor: Assessor, records: list[dict]) -> list[Assessment]:
    out = assessor.assess("declaration", records)
    with session_scope(settings.resolved_ops_db_url) as session:
        write(session, assessor.policy, out)
    return out


def items(settings, record_id: str) -> dict[str, tuple[str, str | None]]:
    """assessment id -> (status, newer_assessment_id) of the record's queue rows."""
    with session_scope(settings.resolved_ops_db_url) as session:
        rows = session.scalars(select(RiskQueueItem).where(RiskQueueItem.record_id == record_id))
        return {r.assessment_id: (r.status, r.newer_assessment_id) for r in rows}


def open_ids(settings, office_code: str) -> list[str]:
    with session_scope(settings.resolved_ops_db_url) as session:
        return [
            i["assessment_id"] for i in list_queue(session, scope=None, office=office_code, limit=500).items
        ]


def benign(record: dict) -> dict:
    item = {**record["items"][0], "net_mass_kg": 100.0, "item_price": 5000.0}
    return {**record, "items": [item]}


def test_a_newer_assessment_supersedes_the_open_item(kcs, rules_only) -> None:
    where = office()
    (record,) = heavy_cheap(where)
    (first,) = assess_and_store(kcs, rules_only, [record])
    (second,) = assess_and_store(kcs, rules_only, [record])
    assert first.record_id == second.record_id and first.lane == second.lane == "red"
    assert items(kcs, first.record_id) == {
        first.assessment_id: ("superseded", second.assessment_id),  # kept for audit
        second.assessment_id: ("open", None),
    }
    assert open_ids(kcs, where) == [second.assessment_id]


def test_the_same_record_twice_in_one_commit_leaves_one_open_item(kcs, rules_only) -> None:
    where = office()
    (record,) = heavy_cheap(where)
    older, newer = rules_only.assess("declaration", [record, record])
    with session_scope(kcs.resolved_ops_db_url) as session:
        write(session, rules_only.policy, [older, newer])
    assert items(kcs, older.record_id) == {
        older.assessment_id: ("superseded", newer.assessment_id),
        newer.assessment_id: ("open", None),
    }
    assert open_ids(kcs, where) == [newer.assessment_id]


def test_a_green_reassessment_clears_the_open_item(kcs, rules_only) -> None:
    where = office()
    (record,) = heavy_cheap(where)
    (first,) = assess_and_store(kcs, rules_only, [record])
    (second,) = assess_and_store(kcs, rules_only, [benign(record)])
    assert second.record_id == first.record_id and second.lane == "green"
    assert items(kcs, first.record_id) == {first.assessment_id: ("superseded", second.assessment_id)}
    assert open_ids(kcs, where) == []


@pytest.mark.parametrize("work", ["take", "override"])
def test_an_item_an_officer_worked_is_kept_and_told(kcs, rules_only, work) -> None:
    where = office()
    (record,) = heavy_cheap(where)
    (first,) = assess_and_store(kcs, rules_only, [record])
    with session_scope(kcs.resolved_ops_db_url) as session:
        if work == "take":
            assign(session, first.assessment_id, actor="officer1", scope=None)
        else:
            override(
                session,
                first.assessment_id,
                lane="yellow",
                reason="known importer",
                actor="officer1",
                scope=None,
            )
    (second,) = assess_and_store(kcs, rules_only, [record])
    status = "assigned" if work == "take" else "open"
    # the officer's item stays the record's one item and names the re-assessment (in the lake)
    assert items(kcs, first.record_id) == {first.assessment_id: (status, second.assessment_id)}
    assert open_ids(kcs, where) == [first.assessment_id]


def test_an_inspected_record_is_not_queued_again_by_a_reassessment(kcs, rules_only) -> None:
    where = office()
    (record,) = heavy_cheap(where)
    (first,) = assess_and_store(kcs, rules_only, [record])
    lake = open_lake(kcs.resolved_catalog_uri, kcs.resolved_warehouse)
    with session_scope(kcs.resolved_ops_db_url) as session:
        outcome = InspectionInput(first.assessment_id, "no_discrepancy", first.assessed_at.date())
        record_inspection(session, lake, outcome, actor="officer1", scope=None)
    (second,) = assess_and_store(kcs, rules_only, [record])  # a new model or rules: still red
    assert second.lane == "red"
    assert items(kcs, first.record_id) == {first.assessment_id: ("done", second.assessment_id)}
    assert open_ids(kcs, where) == []


def officer_token(settings) -> str:
    """A service account of its own (the shared instance's token accounts belong to test_api)."""
    with session_scope(settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, f"officer-{uuid.uuid4().hex[:8]}", ["targeting_officer"], service=True)
        return issue_token(session, user, 60).token


def test_the_api_keeps_one_item_and_refuses_work_on_a_superseded_one(kcs, kcs_model) -> None:
    from tests.risk.engine.conftest import with_model

    client = make_client(kcs)
    svc = RiskService(kcs, with_model(Assessor.load(kcs, kinds=("declaration",)), kcs_model))
    client.app.state.risk_service = svc
    try:
        officer = bearer(officer_token(kcs))
        where = office()
        (record,) = heavy_cheap(where)
        ids = []
        for _ in range(2):  # the real-time path: the service's group-commit store
            res = client.post("/api/v1/risk/assess", json={"kind": "declaration", "record": record},
                              headers=officer)  # fmt: skip
            assert res.status_code == 200, res.text
            ids.append(res.json()["assessments"][0]["assessment_id"])
        listed = client.get("/api/v1/risk/queue", params={"office": where}, headers=officer).json()
        assert [i["assessment_id"] for i in listed["items"]] == [ids[1]]
        old = client.get("/api/v1/risk/queue", params={"office": where, "status": "superseded"},
                         headers=officer).json()  # fmt: skip
        assert [i["assessment_id"] for i in old["items"]] == [ids[0]]
        assert old["items"][0]["newer_assessment_id"] == ids[1]  # where the officer should look
        assert_envelope(client.post(f"/api/v1/risk/queue/{ids[0]}/assign", headers=officer), 409, "conflict")
        refused = client.post(f"/api/v1/risk/queue/{ids[0]}/override", headers=officer,
                              json={"lane": "green", "reason": "stale item"})  # fmt: skip
        assert_envelope(refused, 409, "conflict")
        assert client.post(f"/api/v1/risk/queue/{ids[1]}/assign", headers=officer).status_code == 200
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, shared_data):
    """An instance of its own: batch scoring here scores every record of it."""
    return build_instance(tmp_path_factory.mktemp("rescore") / "instance", shared_data)


def queue_counts(settings) -> dict[str, tuple[int, int]]:
    """status -> (items, distinct records)."""
    with session_scope(settings.resolved_ops_db_url) as session:
        q = select(
            RiskQueueItem.status, func.count(), func.count(func.distinct(RiskQueueItem.record_id))
        ).group_by(RiskQueueItem.status)
        return {status: (n, records) for status, n, records in session.execute(q)}


def rule_hits(settings) -> dict[str, int]:
    return {r["rule_id"]: r["hits"] for r in hit_report(settings)["rules"]}


def test_batch_rescoring_supersedes_and_the_report_counts_each_record_once(fresh) -> None:
    assessor = Assessor.load(fresh, kinds=("declaration",))
    first = score_since(fresh, "declaration", assessor=assessor)
    assert first.queued > 0 and first.superseded == 0
    counts = queue_counts(fresh)
    assert counts["open"] == (first.queued, first.queued)
    hits = rule_hits(fresh)
    assert hits.get("T-HEAVY-CHEAP", 0) + hits.get("T-CN-DUTY", 0) > 0

    again = score_since(fresh, "declaration", assessor=assessor)
    assert again.assessments == first.assessments and again.superseded == first.queued
    counts = queue_counts(fresh)
    assert counts["open"] == (again.queued, again.queued)  # one open item per record
    assert counts["superseded"] == (first.queued, first.queued)
    assert rule_hits(fresh) == hits  # the re-assessed records are not counted twice

    skipped = score_since(fresh, "declaration", assessor=assessor, unassessed_only=True)
    assert (skipped.records, skipped.assessments, skipped.skipped) == (0, 0, first.records)
    assert queue_counts(fresh)["open"] == (again.queued, again.queued)


def test_unassessed_only_scores_the_records_without_an_assessment(kcs, rules_only) -> None:
    """Records assessed in real time (flushed to the lake) are left alone by a set-up re-run."""
    svc = RiskService(kcs, rules_only, flusher=Flusher(kcs, max_seconds=3600))
    try:
        (a,) = svc.assess("declaration", heavy_cheap(office()))
    finally:
        svc.stop()
    from sciti.risk.engine.scoring import assessed_ids

    assert a.record_id in assessed_ids(kcs, "declaration").to_pylist()


@pytest.mark.postgres
def test_supersede_on_postgres(tmp_path, pg_database, shared_data) -> None:
    s = build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)
    loaded = Assessor.load(s, kinds=("declaration",))
    assessor = Assessor(policy=parse_policy(POLICY), reference=loaded.reference, parts_by_kind=loaded.parts)
    (record,) = heavy_cheap(office())
    (first,) = assess_and_store(s, assessor, [record])
    (second,) = assess_and_store(s, assessor, [record])
    assert items(s, first.record_id) == {
        first.assessment_id: ("superseded", second.assessment_id),
        second.assessment_id: ("open", None),
    }
    for _ in range(2):
        result = score_since(s, "declaration", assessor=loaded)
    assert result.superseded > 0
    items_open, records_open = queue_counts(s)["open"]
    assert items_open == records_open == result.queued + 1  # + the real-time record above


def test_the_database_refuses_a_second_open_item_for_a_record(kcs, rules_only) -> None:
    """The one-open-item rule is also the database's: a writer that skipped enqueue cannot break it."""
    (record,) = heavy_cheap(office())
    first, second = (assess_and_store(kcs, rules_only, [record])[0] for _ in range(2))
    with pytest.raises(IntegrityError), session_scope(kcs.resolved_ops_db_url) as session:
        session.execute(insert(RiskQueueItem), [{**queue_row(first), "assessment_id": uuid.uuid4().hex}])
    assert items(kcs, first.record_id)[second.assessment_id] == ("open", None)


def wait_for_lock_wait(url: str, seconds: float = 30.0) -> bool:
    """True once a session of this database waits for a lock (the racer's insert on the index)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + seconds
    with session_scope(url) as session:
        while time.monotonic() < deadline:
            if session.execute(waiting).scalar_one():
                return True
            session.rollback()  # a fresh snapshot of the activity view
            time.sleep(0.02)
    return False


@pytest.mark.postgres
def test_two_writers_queueing_one_record_at_once_leave_one_open_item(pg_database, rules_only) -> None:
    """On PostgreSQL neither writer sees the other's uncommitted item: the index refuses the second
    insert, and its retry supersedes the first writer's item."""
    migrate(pg_database)
    (record,) = heavy_cheap(office())
    first, second = (rules_only.assess("declaration", [record])[0] for _ in range(2))
    inserted, release = threading.Event(), threading.Event()

    def queue(a: Assessment, hold: bool = False):
        def work(session):
            enqueue(session, [(a.kind, a.record_id, a.assessment_id)], [queue_row(a)])
            if hold:  # the first writer's item is written, not yet committed
                inserted.set()
                assert release.wait(30)

        return lambda: committed(pg_database, work)

    holder = threading.Thread(target=queue(first, hold=True))
    holder.start()
    assert inserted.wait(30)
    racer = threading.Thread(target=queue(second))
    racer.start()  # it finds no open item (the first is uncommitted) and inserts: the index waits
    assert wait_for_lock_wait(pg_database), "the second writer never waited on the first"
    release.set()
    holder.join(30)
    racer.join(30)
    with session_scope(pg_database) as session:
        rows = session.scalars(select(RiskQueueItem).where(RiskQueueItem.record_id == first.record_id))
        found = {r.assessment_id: (r.status, r.newer_assessment_id) for r in rows}
    assert found == {
        first.assessment_id: ("superseded", second.assessment_id),
        second.assessment_id: ("open", None),
    }
