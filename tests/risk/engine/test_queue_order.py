"""The queue is ordered by how soon a lane's work is due, then by score (decision 0091).

A lane rule (a watch-list hit) sends a record to red with a score of 0; ordered by score alone,
every blue and yellow item with a score came first and the red ones were on the last pages. Red
comes first now, then yellow, then blue (post-clearance audit), then any other lane; keyset
pages follow that order and are served by an index on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, insert

from sciti.ops import get_engine, migrate, session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine import RuleHit, list_queue
from sciti.risk.engine.decide import hit_text
from sciti.risk.engine.workqueue import lane_rules
from tests.risk.engine.test_store import heavy_cheap

URGENCY = {"red": 3, "yellow": 2, "blue": 1}
WATCHLIST = "Passenger on the watch list (rule PAX-WATCHLIST-01 v1, lane red)"


def office() -> str:
    return f"Q{uuid.uuid4().hex[:10]}"  # one office per test: its queue is that test's alone


def row(office_code: str, lane: str, score: float, status: str = "open", **more) -> dict:
    return {
        "assessment_id": uuid.uuid4().hex, "kind": "passenger", "record_id": uuid.uuid4().hex,
        "subject_ref": f"P-{lane}-{score}", "office_code": office_code, "score": score, "lane": lane,
        "assigned_lane": lane, "sampled": False, "reasons": [], "rule_ids": [], "model_version": None,
        "assessed_at": datetime.now(UTC), "status": status, **more,
    }  # fmt: skip


def put(url: str, rows: list[dict]) -> None:
    with session_scope(url) as session:
        session.execute(insert(RiskQueueItem), rows)


def expected(rows: list[dict], statuses=("open", "assigned")) -> list[str]:
    kept = [r for r in rows if r["status"] in statuses]
    kept.sort(key=lambda r: (URGENCY.get(r["lane"], 0), r["score"], r["assessment_id"]), reverse=True)
    return [r["assessment_id"] for r in kept]


def every_page(url: str, limit: int, **filters) -> list[str]:
    out: list[str] = []
    cursor = None
    with session_scope(url) as session:
        while True:
            page = list_queue(session, scope=None, cursor=cursor, limit=limit, **filters)
            out += [i["assessment_id"] for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return out


@pytest.fixture
def ops_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate(url)
    return url


def test_red_comes_first_whatever_its_score(ops_url) -> None:
    """The reviewer's queue: blue and yellow items with scores, red passengers at 0.000."""
    mine = office()
    blue, yellow = row(mine, "blue", 72.5), row(mine, "yellow", 64.0)
    watched = row(mine, "red", 0.0, reasons=[WATCHLIST], rule_ids=["PAX-WATCHLIST-01"])
    red, overridden = row(mine, "red", 91.0), row(mine, "green", 99.0, assigned_lane="blue")
    put(ops_url, [blue, yellow, watched, red, overridden])
    with session_scope(ops_url) as session:
        page = list_queue(session, scope=None, office=mine, limit=50).items
    assert [i["assessment_id"] for i in page] == [
        red["assessment_id"], watched["assessment_id"], yellow["assessment_id"],
        blue["assessment_id"], overridden["assessment_id"],
    ]  # fmt: skip
    # The watch-listed passenger's lane comes from its rule, not from its score of 0.
    assert page[1]["lane_rules"] == ["PAX-WATCHLIST-01"]
    assert [i["lane_rules"] for i in page if i is not page[1]] == [[]] * 4


def test_keyset_pages_follow_the_lane_order_at_every_depth(ops_url) -> None:
    """Many ties (the same few scores in every lane) and every page size: no item twice, none lost."""
    mine = office()
    rnd = random.Random(7)
    rows = [
        row(mine, rnd.choice(["red", "yellow", "blue", "blue", "green"]), rnd.choice([0.0, 45.0, 62.5, 90.0]),
            status=rnd.choice(["open", "open", "assigned", "done", "superseded"]))
        for _ in range(400)
    ]  # fmt: skip
    put(ops_url, rows)
    for limit in (1, 7, 50, 500):
        assert every_page(ops_url, limit, office=mine) == expected(rows)
    # A lane filter and the other statuses page the same way.
    assert every_page(ops_url, 9, office=mine, lane="red") == [
        a for a in expected(rows) if next(r for r in rows if r["assessment_id"] == a)["lane"] == "red"
    ]
    assert every_page(ops_url, 13, office=mine, status="done") == expected(rows, ("done",))


def test_status_any_lists_every_status(ops_url) -> None:
    mine = office()
    statuses = ("open", "assigned", "done", "superseded")
    rows = [row(mine, "red", 50.0, status=s) for s in statuses]
    put(ops_url, rows)
    assert every_page(ops_url, 2, office=mine, status="any") == expected(rows, statuses)
    assert every_page(ops_url, 2, office=mine) == expected(rows)  # by default: still to do


def _plans(url: str, explain: str, **filters) -> list[str]:
    """The plan of every statement one full walk through the queue's pages runs."""
    seen: dict[str, tuple] = {}

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM risk_queue" in statement and "ORDER BY" in statement:
            seen.setdefault(statement, parameters)

    engine = get_engine(url)
    event.listen(engine, "before_cursor_execute", keep)
    try:
        every_page(url, 20, **filters)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert len(seen) == 3, "first page, rest of a lane, the next lanes"
    with engine.connect() as conn:
        if url.startswith("postgresql"):
            # What the indexes can do, whatever the table's size: with sorting made dear, only an
            # index that gives the order avoids a Sort.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.exec_driver_sql(f"SET {setting} = off")
        return [
            " ".join(str(line[-1]) for line in conn.exec_driver_sql(explain + statement, params))
            for statement, params in seen.items()
        ]


def test_sqlite_walks_the_queue_by_its_index_without_sorting(ops_url) -> None:
    """Every page is a search of ix_risk_queue_urgency from the cursor: the millionth page costs
    what the first does. SQLite uses an index on an expression only for that very expression."""
    put(ops_url, [row(office(), lane, float(i)) for i in range(30) for lane in ("red", "yellow", "blue")])
    first, rest, later = _plans(ops_url, "EXPLAIN QUERY PLAN ")
    for plan in (first, rest, later):
        assert "ix_risk_queue_urgency" in plan and "TEMP B-TREE" not in plan, plan
    assert "(<expr>=? AND (score,assessment_id)<(?,?))" in rest, rest
    assert "(<expr><?)" in later, later


@pytest.mark.postgres
def test_postgres_walks_the_queue_by_its_index_without_sorting(pg_database) -> None:
    migrate(pg_database)
    rows = [row(office(), lane, float(i)) for i in range(30) for lane in ("red", "yellow", "blue", "green")]
    put(pg_database, rows)
    assert every_page(pg_database, 7) == expected(rows)
    for plan in _plans(pg_database, "EXPLAIN "):
        assert "Index Scan Backward using ix_risk_queue_urgency" in plan and "Sort" not in plan, plan


def test_a_lane_rule_is_named_as_the_engine_writes_it() -> None:
    """``lane_rules`` reads the reasons the engine writes (decide.hit_text, and the batch path's)."""
    hits = [
        RuleHit("PAX-WATCHLIST-01", 2, 0.0, "red", "Surname on the watch list"),
        RuleHit("PAX-ROUTE-02", 1, 30.0, None, "Route through a hub"),
        RuleHit("PAX-CASH-03", 1, 0.0, "yellow", "Cash declared late"),
    ]
    reasons = [hit_text(h) for h in hits] + ["Item 1: " + hit_text(hits[0])]
    assert lane_rules(reasons, "red") == ["PAX-WATCHLIST-01"]
    assert lane_rules(reasons, "yellow") == ["PAX-CASH-03"]
    assert lane_rules(reasons, "blue") == []


def test_a_real_lane_rule_hit_at_score_zero_heads_the_queue(kcs) -> None:
    """Through the engine: T-HEAVY-CHEAP names red and weighs nothing; without a model the score
    is 0, and the item still comes before a blue item of the same office with a score."""
    from sciti.risk.engine import Assessor
    from sciti.risk.engine.store import write

    mine = office()
    assessor = Assessor.load(kcs, kinds=("declaration",))
    (a,) = assessor.assess("declaration", heavy_cheap(mine))
    assert (a.lane, a.score) == ("red", 0.0)
    blue = row(mine, "blue", 55.0)
    put(kcs.resolved_ops_db_url, [blue])
    with session_scope(kcs.resolved_ops_db_url) as session:
        write(session, assessor.policy, [a])
    with session_scope(kcs.resolved_ops_db_url) as session:
        page = list_queue(session, scope=mine, limit=10).items
    assert [i["assessment_id"] for i in page] == [a.assessment_id, blue["assessment_id"]]
    assert page[0]["lane_rules"] == ["T-HEAVY-CHEAP"]


def test_a_cursor_of_another_shape_is_refused(ops_url) -> None:
    import base64

    from sciti.errors import InvalidInput

    old = base64.urlsafe_b64encode(b"90.0|abc").decode()  # a cursor of the score-only order
    with session_scope(ops_url) as session, pytest.raises(InvalidInput):
        list_queue(session, scope=None, cursor=old)


def test_an_instance_made_before_0004_gets_the_index_and_keeps_its_queue(tmp_path) -> None:
    from alembic import command

    from sciti.ops.db import alembic_config

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    command.upgrade(alembic_config(url), "0003")
    kept = row("X", "red", 0.0)
    with get_engine(url).begin() as conn:
        conn.execute(insert(RiskQueueItem.__table__), [kept])
    migrate(url)

    def indexes() -> set[str]:
        with get_engine(url).connect() as conn:
            names = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'risk_queue'"
            return set(conn.exec_driver_sql(names).scalars())

    assert "ix_risk_queue_urgency" in indexes() and "ix_risk_queue_order" not in indexes()
    assert every_page(url, 5) == [kept["assessment_id"]]
    command.downgrade(alembic_config(url), "0003")
    assert "ix_risk_queue_order" in indexes() and "ix_risk_queue_urgency" not in indexes()
