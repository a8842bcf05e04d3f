"""The same engine with the catalog and the operational database on the real PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

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
)
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
        page = list_queue(session, office="PG1", limit=2)
        assert len(page.items) == 2 and page.next_cursor
        rest = list_queue(session, office="PG1", limit=2, cursor=page.next_cursor)
        assert len(rest.items) == 1 and rest.next_cursor is None
        aid = answers[0].assessment_id
        override(session, aid, lane="yellow", reason="documents suffice", actor="bob")
        lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
        done = record_inspection(
            session, lake, InspectionInput(aid, "no_discrepancy", answers[0].assessed_at.date()), actor="bob"
        )
    assert done["fraud"] is False and done["selection_reason"] == "officer"
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    ids = (
        query(lake, "SELECT assessment_id FROM risk.assessments WHERE office_code = 'PG1'")
        .column(0)
        .to_pylist()
    )
    assert sorted(ids) == sorted(a.assessment_id for a in answers)
