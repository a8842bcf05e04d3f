"""The same engine with the catalog and the operational database on the real PostgreSQL."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

import pytest

from sciti.acquire import Runner, list_quarantine, load_connector
from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.risk.engine import (
    Assessor,
    Flusher,
    InspectionInput,
    RiskService,
    list_queue,
    override,
    record_inspection,
    score_since,
)
from sciti.risk.engine.errors import StoreUnavailable
from sciti.risk.engine.store import AssessmentStore
from tests.risk.engine.conftest import build_instance
from tests.risk.engine.test_store import heavy_cheap


@pytest.mark.postgres
def test_assess_queue_override_feedback_and_flush_on_postgres(tmp_path, pg_database, shared_data) -> None:
    s = build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)
    assessor = Assessor.load(s, kinds=("declaration",))
    # No compliance sample: a sampled record's inspection would count as random, not the override.
    assessor.policy = dataclasses.replace(assessor.policy, sample_share=0.0)
    svc = RiskService(s, assessor, flusher=Flusher(s, max_seconds=3600))
    try:
        answers = [svc.assess("declaration", [r])[0] for r in heavy_cheap("PG1", 3)]
    finally:
        svc.stop()  # flushes the buffer into risk.assessments
    assert {a.lane for a in answers} == {"red"}
    with session_scope(s.resolved_ops_db_url) as session:
        page = list_queue(session, scope="PG1", limit=2)  # as an account bound to office PG1
        assert len(page.items) == 2 and page.next_cursor
        rest = list_queue(session, scope="PG1", limit=2, cursor=page.next_cursor)
        assert len(rest.items) == 1 and rest.next_cursor is None
        aid = answers[0].assessment_id
        override(session, aid, lane="yellow", reason="documents suffice", actor="bob", scope="PG1")
        lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
        done = record_inspection(
            session,
            lake,
            InspectionInput(aid, "no_discrepancy", answers[0].assessed_at.date()),
            actor="bob",
            scope="PG1",
        )
    assert done["fraud"] is False and done["selection_reason"] == "officer"
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    ids = (
        query(lake, "SELECT assessment_id FROM risk.assessments WHERE office_code = 'PG1'")
        .column(0)
        .to_pylist()
    )
    assert sorted(ids) == sorted(a.assessment_id for a in answers)


@pytest.mark.postgres
def test_a_value_the_database_refuses_fails_only_its_own_request(tmp_path, pg_database, shared_data) -> None:
    """Requests are committed together; when the database refuses one request's values (here an
    office code longer than its column, which the API would refuse first), the others are stored."""
    s = build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)
    assessor = Assessor.load(s, kinds=("declaration",))
    store = AssessmentStore(s, assessor.policy)
    try:
        (bad,) = heavy_cheap("PGX1")
        bad["office_code"] = "O" * 40
        requests = (heavy_cheap("PGX1"), [bad], heavy_cheap("PGX1"))
        answers = [assessor.assess("declaration", r) for r in requests]
        group: list[tuple[list, Future[None]]] = [(a, Future()) for a in answers]
        store._commit(group)  # one group, as the writer forms it from requests arriving together
        with pytest.raises(StoreUnavailable, match="too long"):
            group[1][1].result(timeout=0)
        assert group[0][1].result(timeout=0) is None and group[2][1].result(timeout=0) is None
    finally:
        store.close()
    with session_scope(s.resolved_ops_db_url) as session:
        queued = {i["assessment_id"] for i in list_queue(session, scope=None, office="PGX1", limit=10).items}
    assert queued == {answers[0][0].assessment_id, answers[2][0].assessment_id}


@pytest.mark.postgres
def test_values_longer_than_the_queue_holds_are_quarantined_at_ingest(
    tmp_path, pg_database, shared_data
) -> None:
    """The batch path queues what the lake holds. A source row with an office code or a declaration
    id longer than the officers' queue keeps is quarantined when it arrives, saying why, so scoring
    the rest on PostgreSQL never meets a value the database would refuse."""
    s = build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)
    source = shared_data / "kcs" / "valid.csv"
    with source.open(encoding="utf-8") as fh:
        head, *lines = [next(fh) for _ in range(4)]
    fields = [line.split(",") for line in lines]
    for f in fields:  # heavy and cheap: the red lane, so each would be queued
        f[18], f[19] = "50000", "10"
    fields[0][0] = "L" * 100  # declaration id
    fields[1][0], fields[1][2] = "LONGOFFICE1", "O" * 40  # a new id, so it is not a correction
    fields[2][0] = "LONGOFFICE2"
    late = tmp_path / "late.csv"
    late.write_text(head + "".join(",".join(f) for f in fields), encoding="utf-8")

    (result,) = Runner(s).ingest_path(load_connector(s, "kcs"), late)
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 3, 1, 2)
    entries = [e for e in list_quarantine(s) if e["batch_id"] == result.batch_id]
    reasons = {e["field"]: e["reason"] for e in entries}
    assert set(reasons) == {"declaration_id", "office_code"}
    assert "100 characters long; at most" in reasons["declaration_id"]
    assert "40 characters long; at most 32" in reasons["office_code"]

    scored = score_since(s, "declaration")  # the whole lake, the late row among it
    assert scored.assessments > 0 and scored.queued > 0
