"""The hash-chained audit trail on SQLite and PostgreSQL: tampering with the store is found, and where."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from sciti.access import anchor, audit, list_entries, verify
from sciti.access.audit import GENESIS, append, entry_hash
from sciti.ops import get_engine, migrate, session_scope
from sciti.ops.policy_tables import AuditEntry
from tests.conftest import PG_SERVER


@contextmanager
def temporary_pg_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server for a whole module (one per test is slow)."""
    name = f"sciti_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        get_engine(f"{PG_SERVER}/{name}").dispose()
        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'ops.db'}"
        migrate(url)
        yield url
        return
    with temporary_pg_database() as url:
        migrate(url)
        yield url


def clear_audit(url: str) -> None:
    _run(url, "DELETE FROM audit_log", "DELETE FROM audit_head")


@pytest.fixture
def db(migrated: str) -> str:
    """The module's database with an empty audit trail."""
    clear_audit(migrated)
    return migrated


def _fill(url: str, n: int = 5) -> None:
    for i in range(1, n + 1):
        with session_scope(url) as s:
            audit(
                s,
                actor=f"user{i % 2}",
                action="query" if i % 2 else "unmask",
                target=f"table:std.t{i}",
                purpose="case 1" if i == 2 else None,
                source="cli",
                details={"sql": f"SELECT {i}", "rows": i, "ü": "ünïcode"},
            )


def _run(url: str, *statements: str) -> None:
    with session_scope(url) as s:
        for stmt in statements:
            s.execute(text(stmt))


def _check(url: str, anchor_file: Path | None = None):
    with session_scope(url) as s:
        return verify(s, anchor_file)


def test_untouched_chain_verifies(db: str) -> None:
    _fill(db)
    result = _check(db)
    assert result.ok and result.entries == 5 and result.head_seq == 5
    with session_scope(db) as s:
        entries = list(reversed(list_entries(s)))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert entries[1].purpose == "case 1" and entries[1].details["ü"] == "ünïcode"
    assert result.head_hash == entries[-1].hash


def test_an_empty_trail_verifies(db: str) -> None:
    result = _check(db)
    assert result.ok and result.entries == 0 and result.head_hash == GENESIS


SWAP = (
    "UPDATE audit_log SET seq = -1 WHERE seq = 2",
    "UPDATE audit_log SET seq = 2 WHERE seq = 3",
    "UPDATE audit_log SET seq = 3 WHERE seq = -1",
)


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "says"),
    [
        (("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3",), 3, "modified"),
        (("UPDATE audit_log SET details = '{}' WHERE seq = 2",), 2, "modified"),
        (("UPDATE audit_log SET purpose = 'made up' WHERE seq = 4",), 4, "modified"),
        (("UPDATE audit_log SET outcome = 'denied' WHERE seq = 1",), 1, "modified"),
        (("DELETE FROM audit_log WHERE seq = 3",), 3, "missing"),
        (("DELETE FROM audit_log WHERE seq = 1",), 1, "missing"),
        (("DELETE FROM audit_log WHERE seq >= 4",), 4, "newest"),
        (SWAP, 2, "modified or moved"),
        (("UPDATE audit_head SET seq = 4",), 5, "head"),
    ],
    ids=[
        "actor",
        "details",
        "purpose",
        "outcome",
        "delete-middle",
        "delete-first",
        "truncate",
        "swap",
        "head",
    ],
)
def test_tampering_is_found_and_located(db: str, tamper, bad_seq: int, says: str) -> None:
    _fill(db)
    _run(db, *tamper)
    result = _check(db)
    assert not result.ok
    assert result.first_bad_seq == bad_seq, result
    assert says in (result.problem or ""), result


def test_a_rehashed_change_breaks_the_next_link(db: str) -> None:
    """Whoever recomputes the changed entry's own hash still breaks the link to it."""
    _fill(db)
    with session_scope(db) as s:
        row = s.get(AuditEntry, 2)
        assert row is not None
        forged = entry_hash(seq=2, at=row.at, actor="nobody", action=row.action, target=row.target,
                            purpose=row.purpose, source=row.source, outcome=row.outcome, details=row.details,
                            prev_hash=row.prev_hash)  # fmt: skip
        s.execute(text("UPDATE audit_log SET actor = 'nobody', hash = :h WHERE seq = 2"), {"h": forged})
    result = _check(db)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "does not follow entry 2" in (result.problem or "")


def test_anchor_catches_a_rewritten_chain(db: str, tmp_path: Path) -> None:
    _fill(db, 3)
    anchor_file = tmp_path / "anchors" / "audit-head.jsonl"
    with session_scope(db) as s:
        seq, _ = anchor(s, anchor_file)
    assert seq == 3 and (anchor_file.stat().st_mode & 0o777) == 0o600
    assert _check(db, anchor_file).ok
    # Rewrite everything consistently from entry 2 on: the chain and head alone cannot tell.
    with session_scope(db) as s:
        rows = [(r.seq, r.at, r.action, r.target, r.purpose, r.source, r.outcome, r.details)
                for r in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]  # fmt: skip
        prev = s.get(AuditEntry, 1).hash  # type: ignore[union-attr]
        s.expunge_all()
        for seq, at, action, target, purpose, source, outcome, details in rows[1:]:
            actor = "rewritten"
            h = entry_hash(seq=seq, at=at, actor=actor, action=action, target=target, purpose=purpose,
                           source=source, outcome=outcome, details=details, prev_hash=prev)  # fmt: skip
            s.execute(
                text("UPDATE audit_log SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": actor, "p": prev, "h": h, "s": seq},
            )
            prev = h
        s.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert _check(db).ok, "a consistent rewrite passes the chain check alone"
    result = _check(db, anchor_file)
    assert (result.ok, result.first_bad_seq) == (False, 3) and "anchored" in (result.problem or "")


def test_concurrent_writers_keep_one_chain(db: str) -> None:
    threads, per_thread = 6, 5
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with session_scope(db) as s:
                    append(s, actor=f"w{n}", action="query", details={"i": i})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    result = _check(db)
    assert result.ok and result.entries == threads * per_thread


def test_an_entry_rolls_back_with_its_transaction(db: str) -> None:
    with pytest.raises(RuntimeError), session_scope(db) as s:
        audit(s, actor="a", action="query")
        raise RuntimeError("the action failed")
    _fill(db, 1)
    result = _check(db)
    assert result.ok and result.entries == 1


def test_list_filters(db: str) -> None:
    _fill(db)
    with session_scope(db) as s:
        assert [e.seq for e in list_entries(s, actor="user0")] == [4, 2]
        assert [e.seq for e in list_entries(s, action="unmask")] == [4, 2]
        assert [e.seq for e in list_entries(s, action="quer")] == []
        assert len(list_entries(s, since=datetime.now(UTC) - timedelta(minutes=5))) == 5
        assert list_entries(s, since=datetime.now(UTC) + timedelta(minutes=5)) == []
        assert [e.seq for e in list_entries(s, limit=2, offset=1)] == [4, 3]
