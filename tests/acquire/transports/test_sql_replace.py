"""A mutable source table read by SQL extraction, with ``on_change: replace`` (decision 0112).

The source is a table of declaration lines on the real PostgreSQL, updated in place with no
version column: the record key is the business key only. An updated row replaces the stored
record (and the item written from the same row) instead of adding a second row or landing in
quarantine; the earlier version stays readable by time travel; counts reconcile.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from sciti.acquire import Runner, list_batches, list_quarantine
from sciti.acquire.errors import ConnectorError
from sciti.acquire.transports import SqlExtractor, SqlSpec, transport_spec
from sciti.lake import query
from tests.acquire.conftest import rows, write_connector
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def definition(on_change: str | None) -> dict[str, Any]:
    """One row of ``src_lines`` is a declaration (version always 1: the key is the declaration
    number alone) and its one goods item."""
    found: dict[str, Any] = {
        "name": "sql_lines",
        "source": "sql_lines",
        "format": "jsonl",
        "outputs": [
            {
                "kind": "declaration",
                "fields": {
                    "declaration_id": "declaration_no",
                    "version": "1",
                    "office_code": "office",
                    "invoice_amount": "amount",
                    "invoice_currency": "currency",
                },
            },
            {
                "kind": "declaration_item",
                "fields": {
                    "declaration_id": "declaration_no",
                    "declaration_version": "1",
                    "item_number": "item_no",
                    "hs_code": "hs",
                },
            },
        ],
        "transport": "sql",
        "settings": {
            "url_secret": "sciti_test_source",
            "table": "src_lines",
            "watermark": "updated_at",
            "tiebreak": "id",
            "batch_rows": 1000,
        },
    }
    if on_change:
        found["on_change"] = on_change
    return found


class Source:
    """The source system: declaration lines updated in place, and their current state."""

    def __init__(self, url: str):
        self.engine = create_engine(url)
        with self.engine.begin() as c:
            c.execute(
                text(
                    "CREATE TABLE src_lines (id bigserial PRIMARY KEY, declaration_no text UNIQUE NOT NULL,"
                    " office text, amount numeric(18,2), currency text, item_no int, hs text,"
                    " updated_at timestamptz NOT NULL)"
                )
            )

    def insert(self, n: int, at: datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO src_lines (declaration_no, office, amount, currency, item_no, hs,"
                    " updated_at) VALUES (:d, 'HKG01', 10.50, 'HKD', 1, '851713', :at)"
                ),
                [{"d": f"L-{i:03d}", "at": at} for i in range(self.count(), self.count() + n)],
            )

    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM src_lines")).scalar_one())

    def update(self, number: str, at: datetime, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as c:
            c.execute(
                text(f"UPDATE src_lines SET {sets}, updated_at = :at WHERE declaration_no = :d"),
                {**values, "at": at, "d": number},
            )

    def current(self) -> dict[str, tuple[str, int, str]]:
        """declaration number -> (amount, item number, hs code) as the source holds it now."""
        with self.engine.connect() as c:
            found = c.execute(text("SELECT declaration_no, amount, item_no, hs FROM src_lines")).all()
        return {d: (f"{a:.2f}", n, hs) for d, a, n, hs in found}


@pytest.fixture
def source(pg_database, monkeypatch) -> Source:
    monkeypatch.setenv("SCITI_SECRET_SCITI_TEST_SOURCE", pg_database)
    src = Source(pg_database)
    yield src
    src.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request, tmp_path: Path, pg_database: str):
    """The lake catalog and operational database on SQLite or on the real PostgreSQL."""
    home = tmp_path / "instance"
    home.mkdir()
    extra = {"catalog_uri": pg_database, "ops_db_url": pg_database} if request.param == "postgres" else {}
    return make_settings(home, connectors_dir=tmp_path / "connectors", **extra)


def extractor(settings, on_change: str | None = "replace", runner: Any = None) -> SqlExtractor:
    connector = write_connector(settings, definition(on_change))
    spec = transport_spec(settings, connector)
    assert isinstance(spec, SqlSpec)
    return SqlExtractor(settings, connector, spec, runner or Runner(settings))


def lake_state(settings) -> dict[str, tuple[str, int, str]]:
    """What std holds per declaration (amount, item number, hs code); fails on a second row of a
    declaration or an item whose declaration is not there."""
    decls = rows(settings, "std.declarations")
    items = rows(settings, "std.declaration_items")
    assert max(Counter(r["record_id"] for r in decls).values()) == 1, "a declaration stored twice"
    by_parent = Counter(r["parent_record_id"] for r in items)
    assert set(by_parent) <= {r["record_id"] for r in decls}, "an item without its declaration"
    assert max(by_parent.values()) == 1, "an old item left beside the new one"
    item = {r["parent_record_id"]: r for r in items}
    return {
        r["declaration_id"]: (
            f"{r['invoice_amount']:.2f}",
            item[r["record_id"]]["item_number"],
            item[r["record_id"]]["hs_code"],
        )
        for r in decls
    }


def reconciled(settings) -> list[tuple[int, int, int, int, int]]:
    """(received, stored, quarantined, already stored, replaced) of every batch, oldest first; each
    batch's counts add up."""
    found = list_batches(settings, limit=1000)
    assert all(b["status"] == "committed" and b["reconciled"] for b in found), found
    return [
        (b["received"], b["stored"], b["quarantined"], b["already_stored"], b["replaced"])
        for b in reversed(found)
    ]


def test_an_updated_row_replaces_the_stored_record_over_several_runs(source, instance):
    ex = extractor(instance)
    source.insert(3, T0)
    ex.run_once()
    source.update("L-001", T0 + timedelta(minutes=1), amount=99)
    source.insert(1, T0 + timedelta(minutes=1))  # a new row in the same window
    [second] = ex.run_once()
    assert (second.received, second.stored, second.quarantined, second.already_stored) == (2, 2, 0, 0)
    assert second.replaced == 1
    assert lake_state(instance) == source.current()
    source.update("L-001", T0 + timedelta(minutes=2), amount=120, hs="010121")  # item changes too
    ex.run_once()
    assert lake_state(instance) == source.current()
    assert lake_state(instance)["L-001"] == ("120.00", 1, "010121")
    assert ex.run_once() == []  # nothing changed: no batch
    assert reconciled(instance) == [(3, 3, 0, 0, 0), (2, 2, 0, 0, 1), (1, 1, 0, 0, 1)]
    assert list_quarantine(instance) == []

    # Every earlier version is still in the table's history: read as of the first extraction.
    lake = Runner(instance).lake
    first = lake.history("std.declarations")[0].snapshot_id
    then = query(
        lake, "SELECT invoice_amount FROM std.declarations WHERE declaration_id = 'L-001'", as_of=first
    )
    assert [f"{v:.2f}" for v in then.column("invoice_amount").to_pylist()] == ["10.50"]


def test_the_item_of_an_updated_row_is_replaced_with_its_declaration(source, instance):
    """The row now says item 2: the declaration's old item 1 goes (no orphan), item 2 is stored once."""
    ex = extractor(instance)
    source.insert(2, T0)
    ex.run_once()
    lake = Runner(instance).lake
    commits = len(lake.history("std.declaration_items"))
    source.update("L-000", T0 + timedelta(minutes=1), item_no=2)
    ex.run_once()
    assert lake_state(instance) == source.current()
    assert lake_state(instance)["L-000"] == ("10.50", 2, "851713")
    assert reconciled(instance) == [(2, 2, 0, 0, 0), (1, 1, 0, 0, 1)]
    # Old item out and new item in, in one commit: no reader sees the declaration without an item.
    assert len(lake.history("std.declaration_items")) == commits + 1


def test_a_row_extracted_again_unchanged_is_already_stored(source, instance):
    """A reset extracts the whole table again: rows as stored are counted, not written again."""
    ex = extractor(instance)
    source.insert(3, T0)
    ex.run_once()
    source.update("L-002", T0 + timedelta(minutes=1), amount=7)
    ex.run_once()
    ex.reset()
    [again] = ex.run_once()
    assert (again.received, again.stored, again.already_stored, again.replaced) == (3, 0, 3, 0)
    assert lake_state(instance) == source.current()


class CrashAfterCommit:
    """Fault injection: the real runner commits the window, then the process 'dies'."""

    def __init__(self, real: Runner):
        self.real = real

    def ingest_rows(self, *args, **kwargs):
        self.real.ingest_rows(*args, **kwargs)
        raise SystemExit("killed between the lake commit and the watermark update")


def test_crash_between_lake_commit_and_watermark_update(source, instance):
    ex = extractor(instance)
    source.insert(3, T0)
    ex.run_once()
    source.update("L-000", T0 + timedelta(minutes=1), amount=50)
    source.update("L-001", T0 + timedelta(minutes=1), amount=51)
    crashing = extractor(instance, runner=CrashAfterCommit(Runner(instance)))
    with pytest.raises(SystemExit):
        crashing.run_once()
    # While we were down the source changed the same row again.
    source.update("L-000", T0 + timedelta(minutes=2), amount=60, item_no=3)
    results = extractor(instance).run_once()
    # The pending window is read again and recognised (L-000 has moved past it); the next window
    # brings L-000's latest version.
    assert [r.status for r in results] == ["duplicate", "committed"]
    assert lake_state(instance) == source.current()
    assert lake_state(instance)["L-000"] == ("60.00", 3, "851713")
    assert reconciled(instance) == [(3, 3, 0, 0, 0), (2, 2, 0, 0, 2), (1, 1, 0, 0, 1)]


def test_an_older_version_committed_after_a_newer_one_does_not_overwrite_it(instance, monkeypatch):
    """Batches are ordered by when they were received: a window whose first attempt failed and that
    is retried after a later window committed brings an older version; it is counted as already
    stored (a newer one is), not written over the newer."""
    runner = Runner(instance)
    connector = write_connector(instance, definition("replace"))
    line = {"declaration_no": "L-000", "office": "HKG01", "currency": "HKD", "item_no": 1, "hs": "851713"}

    def window(amount: float, minutes: int) -> list[dict[str, Any]]:
        return [{**line, "amount": amount, "updated_at": T0 + timedelta(minutes=minutes)}]

    assert runner.ingest_rows(connector, window(9, 0), "w0", "fp-0", "sql").status == "committed"

    def disk_gone(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("the disk went away")

    with monkeypatch.context() as m:  # the first attempt at window 1 fails before the lake
        m.setattr(runner, "_write", disk_gone)
        assert runner.ingest_rows(connector, window(10.5, 1), "w1", "fp-1", "sql").status == "failed"
    assert runner.ingest_rows(connector, window(11.5, 2), "w2", "fp-2", "sql").replaced == 1
    retried = runner.ingest_rows(connector, window(10.5, 1), "w1", "fp-1", "sql")
    assert (retried.status, retried.stored, retried.already_stored, retried.replaced) == (
        "committed",
        0,
        1,
        0,
    )
    assert lake_state(instance)["L-000"] == ("11.50", 1, "851713")
    assert reconciled(instance) == [(1, 1, 0, 0, 0), (1, 0, 0, 1, 0), (1, 1, 0, 0, 1)]


@pytest.mark.parametrize("on_change", [None, "quarantine"])
def test_without_replace_every_version_is_kept_as_before(source, instance, on_change):
    """Unset, incremental SQL extraction appends each version as decision 0012 says; the quarantine
    default of other transports is unchanged (tests/acquire/test_already_stored.py)."""
    ex = extractor(instance, on_change=on_change)
    source.insert(2, T0)
    ex.run_once()
    source.update("L-001", T0 + timedelta(minutes=1), amount=99)
    [second] = ex.run_once()
    if on_change is None:
        assert (second.stored, second.quarantined, second.replaced) == (1, 0, 0)
        ids = Counter(r["declaration_id"] for r in rows(instance, "std.declarations"))
        assert ids == {"L-000": 1, "L-001": 2}
    else:
        assert (second.stored, second.quarantined, second.replaced) == (0, 1, 0)
        [entry] = list_quarantine(instance)
        assert "already stored" in entry["reason"] and "invoice_amount" in entry["reason"]


def test_replace_is_refused_where_it_cannot_apply(tmp_path):
    settings = make_settings(tmp_path, connectors_dir=tmp_path / "connectors")
    with pytest.raises(ConnectorError, match="on_change"):
        write_connector(settings, {**definition("overwrite")})
    canon = {"name": "canon", "source": "canon", "format": "jsonl", "kinds": ["declaration"]}
    with pytest.raises(ConnectorError, match="outputs"):
        write_connector(settings, {**canon, "on_change": "replace"})
