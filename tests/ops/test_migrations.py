"""The operational database schema comes only from migrations, and they match the models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from sciti.ops import Base, Batch, get_engine, migrate
from sciti.ops.db import alembic_config
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine.enqueue import _FIND

QUEUED = {
    "assessment_id": "A1", "kind": "declaration", "record_id": "R1", "subject_ref": "D1/1",
    "score": 90.0, "lane": "red", "assigned_lane": "red", "sampled": False, "reasons": ["why"],
    "rule_ids": [], "assessed_at": datetime(2026, 11, 23, tzinfo=UTC), "status": "open",
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def ops_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def test_migrations_create_every_table_and_match_the_models(ops_url: str) -> None:
    migrate(ops_url)
    migrate(ops_url)  # idempotent: a second run changes nothing
    engine = get_engine(ops_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: run `make migration`\n{diff}"


def test_an_instance_made_before_0002_is_upgraded_with_its_queue_kept(tmp_path) -> None:
    """0002 replaced the queue's record-id index; an older instance keeps its items."""
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    with get_engine(url).begin() as conn:
        conn.execute(insert(RiskQueueItem.__table__), [QUEUED])
    migrate(url)
    with get_engine(url).connect() as conn:
        assert conn.execute(select(RiskQueueItem.record_id)).scalars().all() == ["R1"]
        indexes = {i["name"] for i in inspect(conn).get_indexes("risk_queue")}
    assert "ix_risk_queue_record" in indexes and "ix_risk_queue_record_id" not in indexes


def test_the_queue_lookup_of_every_commit_uses_the_kind_and_record_index(tmp_path) -> None:
    """Each commit that queues looks up the records' items (enqueue). SQLite keeps no statistics
    here; with the record-id index alone it read every item of the kind for each lookup."""
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate(url)
    with get_engine(url).connect() as conn:
        stmt = _FIND.params(kind="declaration", ids=["R1", "R2"])
        sql = stmt.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "USING INDEX ix_risk_queue_record (kind=? AND record_id=?)" in plan, plan


def test_an_instance_made_before_0006_keeps_its_batches_with_nothing_already_stored(tmp_path) -> None:
    """0006 added the batch count `already_stored` (decision 0105): an older batch reads 0 and
    still reconciles (received = stored + quarantined + already_stored)."""
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    command.upgrade(alembic_config(url), "0005")
    with get_engine(url).begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO batches (id, connector, source, transport, unit, fingerprint, status, received, "
            "stored, quarantined, tables, started_at) VALUES ('b1', 'kcs', 'kcs', 'file', 'valid.csv', "
            "'f1', 'committed', 10, 8, 2, '{}', '2026-11-24 00:00:00')"
        )
    migrate(url)
    with get_engine(url).connect() as conn:
        row = conn.execute(
            select(Batch.received, Batch.stored, Batch.quarantined, Batch.already_stored)
        ).one()
    assert tuple(row) == (10, 8, 2, 0)
