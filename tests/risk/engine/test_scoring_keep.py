"""Batch scoring keeps a run in whole parts, each all or nothing: its assessments in the lake, its
flagged records on the queue and its red places counted, or none of them. A run that fails half
way must not leave assessments in the lake that no officer was given: every ``unassessed_only``
run after it would skip those records for good. Parts keep the transaction that real-time answers
wait for short, and hand out red places as one transaction for the whole run would."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy import create_engine, delete, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskCapacityUse, RiskQueueItem
from sciti.risk.engine import Assessor, parts, score_since, scoring_parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.errors import ScoringStopped
from sciti.risk.engine.flusher import Flusher
from sciti.risk.engine.scoring import keep
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


@pytest.fixture
def pg_instance(tmp_path, pg_database, shared_data):
    """Catalog and operational database both on PostgreSQL."""
    return build_instance(tmp_path / "instance", shared_data, catalog_uri=pg_database, ops_db_url=pg_database)


def test_a_lake_write_that_fails_leaves_no_queue_item_and_no_place_taken(instance) -> None:
    assessor = capped(instance)
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    table = lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
    data = Path(urlparse(table.location()).path) / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.write_text("a file where the lake's data folder belongs: every write into it fails")
    try:
        with pytest.raises(ScoringStopped, match="after keeping 0 of") as stopped:
            score_since(instance, "declaration", assessor=assessor)
        assert isinstance(stopped.value.__cause__, OSError)
        assert kept(instance) == (0, 0, 0)
    finally:
        data.unlink()
    # Nothing of the failed run counts as assessed: the repeat scores every record.
    assert_whole(instance, score_since(instance, "declaration", assessor=assessor, unassessed_only=True))


@pytest.mark.postgres
def test_a_commit_the_database_refuses_leaves_nothing_in_the_lake(pg_instance, pg_database) -> None:
    """The database can refuse a part at COMMIT (here a deferred check, as a database administrator
    might add). The lake commit comes after it, so the lake never takes rows the queue refused, and
    the files written for them are deleted."""
    s = pg_instance
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
        with pytest.raises(ScoringStopped, match="closed for maintenance") as stopped:
            score_since(s, "declaration", assessor=assessor)
        assert isinstance(stopped.value.__cause__, DBAPIError)
        assert "[SQL:" not in str(stopped.value)  # the cause in one line, not the statement and its values
        assert kept(s) == (0, 0, 0)
        lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
        assert lake.history(ASSESSMENTS_TABLE) == [] and files_on_disk(lake) == set()
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
    assert files_on_disk(lake) == files_referenced(lake)


def files_on_disk(lake) -> set[str]:
    folder = Path(urlparse(lake.table(ASSESSMENTS_TABLE).location()).path) / "data"
    return {p.name for p in folder.rglob("*.parquet")}


def files_referenced(lake) -> set[str]:
    return {
        Path(urlparse(t.file.file_path).path).name for t in lake.table(ASSESSMENTS_TABLE).scan().plan_files()
    }


def fresh_run(settings, assessor):
    """The instance's declarations assessed, not yet kept."""
    return assessor.assess_batch("declaration", parts.lake_records(settings, "declaration"))


def counters(settings) -> dict[tuple[str, str], int]:
    with session_scope(settings.resolved_ops_db_url) as session:
        return {(r.office_code, r.day.isoformat()): r.used for r in session.scalars(select(RiskCapacityUse))}


def waiting_part(settings) -> tuple[int, int, int, int]:
    """What a part interrupted after its database commit leaves: queued, counted and noted as
    waiting for the lake. Returns (rows in the lake, rows waiting, items queued, places counted)."""
    in_lake, queued, places = kept(settings)
    waiting = scoring_parts.pending(settings.resolved_ops_db_url)
    assert waiting > 0 and queued > 0 and places > 0
    return in_lake, waiting, queued, places


def red_in_lake(settings) -> int:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    sql = f"SELECT count(*) AS n FROM {ASSESSMENTS_TABLE} WHERE lane = 'red'"  # noqa: S608
    return query(lake, sql)["n"][0].as_py()


def forget_places_and_queue(settings) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        session.execute(delete(RiskCapacityUse))
        session.execute(delete(RiskQueueItem))


def test_a_run_kept_in_parts_hands_out_the_places_one_transaction_would(instance) -> None:
    """Each part holds the lock for its own rows only, yet takes no place that a higher-scored red
    decision later in the run needs: lanes, reasons and counted places equal the whole run's."""
    assessor = capped(instance)
    table = fresh_run(instance, assessor)
    # Scores rising row by row: the highest-scored red decisions of an office come in the last
    # parts, and the first parts must leave their places to them.
    n = table.num_rows
    table = table.set_column(table.schema.get_field_index("score"), "score", pa.array(np.linspace(0, 100, n)))
    whole, whole_over, _, whole_queued = keep(instance, assessor.policy, table, "score-whole", part_rows=n)
    whole_places = counters(instance)
    assert whole_over > 0
    forget_places_and_queue(instance)

    split, over, _, queued = keep(instance, assessor.policy, table, "score-split", part_rows=1000)
    assert (over, queued) == (whole_over, whole_queued)
    assert split["lane"].to_pylist() == whole["lane"].to_pylist()
    assert split["reasons"].to_pylist() == whole["reasons"].to_pylist()
    assert counters(instance) == whole_places
    assert max(whole_places.values()) == 3  # full offices, none over capacity

    # One lake commit per part, each naming its part.
    history = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse).history(ASSESSMENTS_TABLE)
    appended = [(h.batch_id, h.added_rows) for h in history if (h.batch_id or "").startswith("score-split")]
    count = -(-n // 1000)
    assert [b for b, _ in appended] == [f"score-split-p{k}" for k in range(1, count + 1)]
    assert [rows for _, rows in appended] == [1000] * (count - 1) + [n - 1000 * (count - 1)]


def test_a_run_that_stops_part_way_keeps_whole_parts_and_says_how_far_it_got(instance, monkeypatch) -> None:
    """The third part's lake commit fails after the part was queued and counted: the run stops and
    says so; the part is kept, and the flusher's next pass commits its files to the lake."""
    assessor = capped(instance)
    table = fresh_run(instance, assessor)
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    commit, commits = lake.commit_staged, []

    def catalog_lost_at_the_third_part(ident, files, *, batch_id=None):
        commits.append(batch_id)
        if len(commits) == 3:
            raise OSError("the catalog database went away")
        return commit(ident, files, batch_id=batch_id)

    monkeypatch.setattr(lake, "commit_staged", catalog_lost_at_the_third_part)
    with pytest.raises(ScoringStopped) as stopped:
        keep(instance, assessor.policy, table, "score-stops", part_rows=1000)
    message = str(stopped.value)
    assert f"stopped after keeping 3,000 of {table.num_rows:,} assessments (3 of " in message
    assert "the last is queued but its lake commit failed" in message
    assert "the catalog database went away" in message and "--unassessed-only" in message
    assert stopped.value.details["kept"] == 3000
    first = table.slice(0, 3000)
    flagged = pc.sum(pc.or_(pc.not_equal(first["lane"], "green"), first["sampled"])).as_py()
    in_lake, queued, _ = kept(instance)
    assert (in_lake, queued) == (2000, flagged)
    assert scoring_parts.pending(instance.resolved_ops_db_url) == 1000
    monkeypatch.undo()

    # Too recent for the flusher: it might be a part whose own run is committing it right now.
    assert Flusher(instance).flush() == 0
    # The rest is scored at once by a run that skips what was kept, the waiting part included.
    rest = score_since(instance, "declaration", assessor=assessor, unassessed_only=True)
    assert rest.assessments == table.num_rows - 3000
    assert max(counters(instance).values()) == 3  # the second run counted on from the first's places

    assert Flusher(instance, stale_seconds=0).flush() == 1000
    assert scoring_parts.pending(instance.resolved_ops_db_url) == 0
    assert kept(instance) == (table.num_rows, flagged + rest.queued, red_in_lake(instance))
    history = [h.batch_id for h in lake.history(ASSESSMENTS_TABLE)]
    assert history[:2] == ["score-stops-p1", "score-stops-p2"] and history[-1] == "score-stops-p3"


@pytest.mark.parametrize("dies", ["before the lake commit", "after the lake commit"])
def test_a_part_interrupted_around_its_lake_commit_reaches_the_lake_exactly_once(
    instance, monkeypatch, dies
) -> None:
    """The process dies after the part's transaction: before its files reach the lake, or after,
    before its note is cleared. The next scoring run finishes the part first, once, and then
    counts its records as assessed."""
    assessor = capped(instance)
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    commit = lake.commit_staged

    def dies_before(ident, files, *, batch_id=None):
        raise KeyboardInterrupt  # the process is stopped: nothing after this line runs

    def dies_after(url, batch_id):
        raise KeyboardInterrupt

    if dies == "before the lake commit":
        monkeypatch.setattr(lake, "commit_staged", dies_before)
    else:
        monkeypatch.setattr(scoring_parts, "done", dies_after)
    with pytest.raises(KeyboardInterrupt):
        score_since(instance, "declaration", assessor=assessor)
    in_lake, waiting, queued, places = waiting_part(instance)
    assert in_lake == (0 if dies == "before the lake commit" else waiting)
    monkeypatch.undo()
    monkeypatch.setattr(lake, "commit_staged", commit)

    monkeypatch.setattr(scoring_parts, "STALE_SECONDS", 0.0)
    again = score_since(instance, "declaration", assessor=assessor, unassessed_only=True)
    assert (again.assessments, again.skipped) == (0, waiting)
    assert kept(instance) == (waiting, queued, places)
    assert scoring_parts.pending(instance.resolved_ops_db_url) == 0
    assert files_on_disk(lake) == files_referenced(lake)


@pytest.mark.postgres
def test_a_later_part_the_database_refuses_leaves_the_earlier_parts_as_they_are(
    pg_instance, pg_database
) -> None:
    """A refused part leaves the parts kept before it as they are, and nothing of its own."""
    s = pg_instance
    assessor = capped(s)
    table = fresh_run(s, assessor)
    first = table.slice(0, 1000)
    flagged = pc.sum(pc.or_(pc.not_equal(first["lane"], "green"), first["sampled"])).as_py()
    admin = create_engine(pg_database)
    with admin.begin() as conn:  # checked at COMMIT: the queue takes the first part's items only
        conn.execute(
            text(
                "CREATE FUNCTION queue_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF (SELECT count(*) FROM risk_queue) > {flagged} THEN "
                "RAISE EXCEPTION 'the queue is full'; END IF; RETURN NULL; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER queue_full AFTER INSERT ON risk_queue "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION queue_full()"
            )
        )
    try:
        with pytest.raises(ScoringStopped, match="after keeping 1,000 of .* the queue is full"):
            keep(s, assessor.policy, table, "score-full", part_rows=1000)
        assert kept(s) == (1000, flagged, red_in_lake(s))
        lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
        in_lake = query(lake, f"SELECT assessment_id FROM {ASSESSMENTS_TABLE}")["assessment_id"]  # noqa: S608
        assert sorted(in_lake.to_pylist()) == sorted(first["assessment_id"].to_pylist())
        assert [h.batch_id for h in lake.history(ASSESSMENTS_TABLE)] == ["score-full-p1"]
        assert files_on_disk(lake) == files_referenced(lake)
    finally:
        with admin.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS queue_full ON risk_queue"))
        admin.dispose()


def test_a_commit_that_fails_on_its_way_back_keeps_the_files_for_the_note(instance, monkeypatch) -> None:
    """The database took the part's COMMIT, but the caller got an error (a connection lost as the
    answer came back). The part is noted, so its files must stay: the flusher commits them."""
    assessor = capped(instance)
    noted: list[str] = []
    record = scoring_parts.record

    def recording(session, batch_id, files, rows):
        noted.append(batch_id)
        record(session, batch_id, files, rows)

    def answer_lost(session) -> None:
        if noted and len(noted) == 1:
            noted.append("raised")
            raise OSError("connection reset as the COMMIT was answered")

    monkeypatch.setattr(scoring_parts, "record", recording)
    event.listen(Session, "after_commit", answer_lost)
    try:
        with pytest.raises(ScoringStopped, match="connection reset"):
            score_since(instance, "declaration", assessor=assessor)
    finally:
        event.remove(Session, "after_commit", answer_lost)
    in_lake, waiting, queued, places = waiting_part(instance)
    assert in_lake == 0
    assert Flusher(instance, stale_seconds=0).flush() == waiting
    assert kept(instance) == (waiting, queued, places) == (waiting, queued, red_in_lake(instance))


@pytest.mark.postgres
def test_on_postgresql_an_interrupted_part_is_finished_by_the_flusher(pg_instance) -> None:
    s = pg_instance
    assessor = capped(s)
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    commit = lake.commit_staged

    def dies(ident, files, *, batch_id=None):
        raise KeyboardInterrupt

    lake.commit_staged = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            score_since(s, "declaration", assessor=assessor)
    finally:
        lake.commit_staged = commit
    in_lake, waiting, queued, places = waiting_part(s)
    assert in_lake == 0
    assert Flusher(s).flush() == 0  # too recent: its own run might be committing it
    assert Flusher(s, stale_seconds=0).flush() == waiting
    assert Flusher(s, stale_seconds=0).flush() == 0  # once
    assert kept(s) == (waiting, queued, red_in_lake(s))
