"""Batch scoring keeps a run all or nothing: its assessments in the lake, its flagged records on
the queue and its red places counted, or none of them. A run that fails half way must not leave
assessments in the lake that no officer was given: every ``unassessed_only`` run after it would
skip those records for good."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.compute as pc
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskCapacityUse, RiskQueueItem
from sciti.risk.engine import Assessor, score_since
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.store import take_red_place
from sciti.risk.lanes import parse_policy
from tests.risk.engine.conftest import build_instance
from tests.risk.engine.test_store import POLICY

CAPPED = {**POLICY, "capacity": {"default": 3}}  # 3 red places per office and day: some runs overflow


def capped(settings) -> Assessor:
    loaded = Assessor.load(settings, kinds=("declaration",))
    return Assessor(policy=parse_policy(CAPPED), reference=loaded.reference, parts_by_kind=loaded.parts)


def kept(settings) -> tuple[int, int, int]:
    """(assessments in the lake, items on the queue, red places counted)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    in_lake = 0
    if lake.exists(ASSESSMENTS_TABLE):
        in_lake = query(lake, f"SELECT count(*) AS n FROM {ASSESSMENTS_TABLE}")["n"][0].as_py()  # noqa: S608
    with session_scope(settings.resolved_ops_db_url) as session:
        queued = session.scalar(select(func.count()).select_from(RiskQueueItem))
        places = session.scalar(select(func.coalesce(func.sum(RiskCapacityUse.used), 0)))
    return in_lake, queued, places


def assert_whole(settings, result) -> None:
    """The run's three traces agree: every assessment in the lake, every flagged record queued, one
    counted place per red decision, and the overflow moved to the next lane."""
    assert result.skipped == 0 and result.assessments > 0
    assert result.over_capacity > 0 and result.lanes["red"] > 0
    assert kept(settings) == (result.assessments, result.queued, result.lanes["red"])


@pytest.fixture
def instance(tmp_path, shared_data):
    return build_instance(tmp_path / "instance", shared_data)


def test_a_lake_write_that_fails_leaves_no_queue_item_and_no_place_taken(instance) -> None:
    assessor = capped(instance)
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    table = lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    data = Path(urlparse(table.location()).path) / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.write_text("a file where the lake's data folder belongs: every write into it fails")
    try:
        with pytest.raises(OSError):
            score_since(instance, "declaration", assessor=assessor)
        assert kept(instance) == (0, 0, 0)
    finally:
        data.unlink()
    # Nothing of the failed run counts as assessed: the repeat scores every record.
    assert_whole(instance, score_since(instance, "declaration", assessor=assessor, unassessed_only=True))


@pytest.mark.postgres
def test_a_commit_the_database_refuses_takes_the_assessments_out_of_the_lake_again(
    tmp_path, pg_database, shared_data
) -> None:
    """The lake commit comes last in the queue's transaction; the database can still refuse at
    COMMIT (here a deferred check, as a database administrator might add), after the lake took the
    rows. They are withdrawn, so the lake never holds an assessment the queue does not know."""
    s = build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)
    assessor = capped(s)
    admin = create_engine(pg_database)
    with admin.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION queue_closed() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'the queue is closed for maintenance'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER queue_closed AFTER INSERT ON risk_queue "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION queue_closed()"
            )
        )
    try:
        with pytest.raises(DBAPIError, match="closed for maintenance"):
            score_since(s, "declaration", assessor=assessor)
        assert kept(s) == (0, 0, 0)
        history = open_lake(s.resolved_catalog_uri, s.resolved_warehouse).history(ASSESSMENTS_TABLE)
        went_in, came_out = history[-2:]
        assert (went_in.operation, went_in.added_rows) == ("append", came_out.deleted_rows)
        assert (came_out.batch_id, came_out.total_rows) == (f"{went_in.batch_id}-withdrawn", 0)
        with admin.begin() as conn:
            conn.execute(text("DROP TRIGGER queue_closed ON risk_queue"))
        assert_whole(s, score_since(s, "declaration", assessor=assessor, unassessed_only=True))
    finally:
        admin.dispose()


def test_places_taken_in_real_time_while_the_files_are_written_are_respected(instance, monkeypatch) -> None:
    """The files are written before the transaction, on the places as they stood. A real-time
    answer that takes a place meanwhile changes which red decisions fit: the batch notices under
    the lock, throws its files away and writes them again, so no office goes over its capacity."""
    assessor = capped(instance)
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    stage, staged = lake.stage, []

    def real_time_answer_meanwhile(ident, data):
        files = stage(ident, data)
        if not staged:  # the first time only: one red place at an office the batch fills
            red = data.filter(pc.equal(data["lane"], "red"))
            full = Counter(red["office_code"].to_pylist()).most_common(1)
            assert full[0][1] == 3
            office, day = full[0][0], red["assessed_at"][0].as_py().date()
            with session_scope(instance.resolved_ops_db_url) as session:
                assert take_red_place(session, assessor.policy, office, day) == (True, 3)
        staged.append(files)
        return files

    monkeypatch.setattr(lake, "stage", real_time_answer_meanwhile)
    result = score_since(instance, "declaration", assessor=assessor)
    assert len(staged) == 2  # written again after the place was taken
    in_lake, queued, places = kept(instance)
    assert (in_lake, queued, places) == (result.assessments, result.queued, result.lanes["red"] + 1)
    with session_scope(instance.resolved_ops_db_url) as session:
        assert max(session.scalars(select(RiskCapacityUse.used))) == 3  # no office over capacity
    # The first files were deleted: every data file in the folder is one the table refers to.
    table = lake.table(ASSESSMENTS_TABLE)
    on_disk = {p.name for p in (Path(urlparse(table.location()).path) / "data").rglob("*.parquet")}
    referenced = {Path(urlparse(t.file.file_path).path).name for t in table.scan().plan_files()}
    assert on_disk == referenced
