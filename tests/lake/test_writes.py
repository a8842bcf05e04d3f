"""Lake writes beyond append: upsert, delete, replace, compaction, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sciti.lake import Lake, LakeError, query

SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("declaration_id", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("office", pa.string()),
    ]
)


def decl(*rows: tuple[str, int, str]) -> pa.Table:
    return pa.table(
        {
            "record_id": [f"{d}-{v}" for d, v, _ in rows],
            "declaration_id": [d for d, _, _ in rows],
            "version": [v for _, v, _ in rows],
            "office": [o for _, _, o in rows],
        }
    )


def contents(lake: Lake) -> list[tuple]:
    result = query(lake, "SELECT declaration_id, version, office FROM std.decl ORDER BY 1, 2")
    return [tuple(r.values()) for r in result.to_pylist()]


@pytest.fixture
def table(any_lake: Lake) -> Lake:
    any_lake.ensure_table("std.decl", SCHEMA)
    any_lake.append("std.decl", decl(("D1", 1, "A"), ("D2", 1, "A")), batch_id="b1")
    any_lake.append("std.decl", decl(("D3", 1, "B")), batch_id="b2")
    return any_lake


@pytest.mark.parametrize(
    ("incoming", "key", "update", "inserted", "updated", "after"),
    [
        (
            decl(("D2", 1, "Z"), ("D4", 1, "C")),
            "record_id",
            True,
            1,
            1,
            [("D1", 1, "A"), ("D2", 1, "Z"), ("D3", 1, "B"), ("D4", 1, "C")],
        ),
        (
            decl(("D2", 1, "Z"), ("D4", 1, "C")),
            "record_id",
            False,
            1,
            0,
            [("D1", 1, "A"), ("D2", 1, "A"), ("D3", 1, "B"), ("D4", 1, "C")],
        ),
        (
            decl(("D3", 1, "Q")),
            ("declaration_id", "version"),
            True,
            0,
            1,
            [("D1", 1, "A"), ("D2", 1, "A"), ("D3", 1, "Q")],
        ),
        (
            decl(("D3", 2, "Q")),
            ("declaration_id", "version"),
            True,
            1,
            0,
            [("D1", 1, "A"), ("D2", 1, "A"), ("D3", 1, "B"), ("D3", 2, "Q")],
        ),
    ],
    ids=["replace and insert", "insert only new", "composite key match", "composite key new version"],
)
def test_upsert(table: Lake, incoming, key, update, inserted, updated, after) -> None:
    commits = len(table.history("std.decl"))
    result = table.upsert("std.decl", incoming, key=key, batch_id="b3", update=update)
    assert (result.inserted, result.updated) == (inserted, updated)
    assert contents(table) == after
    history = table.history("std.decl")
    assert len(history) == commits + 1, "one atomic commit"
    assert history[-1].batch_id == "b3" and table.has_batch("std.decl", "b3")


@pytest.mark.parametrize(
    ("incoming", "reason"),
    [
        (decl(("D9", 1, "A"), ("D9", 1, "B")), "repeat a key"),
        (decl(("D9", 1, "A")).set_column(0, "record_id", pa.array([None], pa.string())), "empty key"),
    ],
)
def test_upsert_refuses_ambiguous_rows(table: Lake, incoming, reason) -> None:
    with pytest.raises(LakeError, match=reason):
        table.upsert("std.decl", incoming)
    assert len(contents(table)) == 3


def test_upsert_removes_rows_without_a_replacement_in_the_same_commit(table: Lake) -> None:
    commits = len(table.history("std.decl"))
    result = table.upsert("std.decl", decl(("D1", 1, "Q")), batch_id="b3", remove=["D2-1", "D9-9"])
    assert (result.inserted, result.updated) == (0, 1)
    assert contents(table) == [("D1", 1, "Q"), ("D3", 1, "B")]
    assert len(table.history("std.decl")) == commits + 1, "one atomic commit"


def test_upsert_removes_only_with_one_key_column_and_updates(table: Lake) -> None:
    for key, update in ((("declaration_id", "version"), True), ("record_id", False)):
        with pytest.raises(LakeError, match="to remove"):
            table.upsert("std.decl", decl(("D1", 1, "Q")), key=key, update=update, remove=["D2-1"])
    assert len(contents(table)) == 3


def test_upsert_into_empty_table(any_lake: Lake) -> None:
    any_lake.ensure_table("std.decl", SCHEMA)
    result = any_lake.upsert("std.decl", decl(("D1", 1, "A")))
    assert (result.inserted, result.updated) == (1, 0)
    assert contents(any_lake) == [("D1", 1, "A")]


@pytest.mark.parametrize(
    ("filter_expr", "after"),
    [
        ("office = 'A'", [("D3", 1, "B")]),
        ("declaration_id = 'D2'", [("D1", 1, "A"), ("D3", 1, "B")]),
        ("version > 5", [("D1", 1, "A"), ("D2", 1, "A"), ("D3", 1, "B")]),
    ],
)
def test_delete(table: Lake, filter_expr: str, after) -> None:
    snapshot = table.delete("std.decl", filter_expr, batch_id="del-1")
    assert contents(table) == after
    if len(after) == 3:
        assert snapshot is None, "nothing matched: no commit"
    else:
        assert table.history("std.decl")[-1].snapshot_id == snapshot


@pytest.mark.parametrize("filter_expr", ["nope = 'A'", "office = = 'A'"])
def test_delete_with_bad_filter_says_why(table: Lake, filter_expr: str) -> None:
    with pytest.raises(LakeError, match="cannot delete with filter"):
        table.delete("std.decl", filter_expr)


def test_history_and_snapshot_at(table: Lake) -> None:
    history = table.history("std.decl")
    assert [(h.operation, h.batch_id, h.added_rows, h.total_rows) for h in history] == [
        ("append", "b1", 2, 2),
        ("append", "b2", 1, 3),
    ]
    first, second = history
    assert table.snapshot_at("std.decl", first.committed_at) == first.snapshot_id
    assert table.snapshot_at("std.decl", second.committed_at + timedelta(hours=1)) == second.snapshot_id
    assert table.snapshot_at("std.decl", datetime(2000, 1, 1, tzinfo=UTC)) is None
    naive = second.committed_at.replace(tzinfo=None)
    assert table.snapshot_at("std.decl", naive) == second.snapshot_id


@pytest.mark.slow
def test_compaction_of_a_real_time_feed(any_lake: Lake) -> None:
    """200 one-row commits become one file; rows, history, batch ids and time travel survive."""
    # pyiceberg commits slow down as snapshots pile up (see Lake.expire_snapshots): the full 200 on
    # SQLite, fewer on PostgreSQL, where the catalog is the only difference.
    n = 200 if any_lake.catalog_uri.startswith("sqlite") else 40
    any_lake.ensure_table("std.decl", SCHEMA)
    for i in range(n):
        any_lake.append("std.decl", decl((f"D{i:03d}", 1, "A")), batch_id=f"msg-{i}")
    before = contents(any_lake)
    files_before = {t.file.file_path for t in any_lake.table("std.decl").scan().plan_files()}
    assert len(files_before) == n
    snapshot_before = any_lake.table("std.decl").current_snapshot().snapshot_id

    result = any_lake.compact("std.decl", target_file_rows=1000)

    table = any_lake.table("std.decl")
    assert (result.files_before, result.files_after, result.files_rewritten) == (n, 1, n)
    assert len(list(table.scan().plan_files())) == 1
    assert contents(any_lake) == before
    assert table.current_snapshot().summary.operation.value == "replace"
    assert any_lake.history("std.decl")[-1].operation == "compact"
    assert all(any_lake.has_batch("std.decl", f"msg-{i}") for i in (0, n // 2, n - 1))
    old = query(any_lake, "SELECT count(*) AS n FROM std.decl", as_of=snapshot_before).to_pylist()
    assert old == [{"n": n}]
    # nothing left to do: a second run commits nothing
    again = any_lake.compact("std.decl", target_file_rows=1000)
    assert again.files_rewritten == 0 and again.snapshot_id == result.snapshot_id


@pytest.mark.parametrize(
    ("sizes", "target", "files_after"),
    [
        ([10] * 10, 25, 5),  # packed into groups of at most 25 rows (2 files each)
        ([100, 5, 5], 100, 2),  # the full-size file is left alone
        ([90, 90], 100, 2),  # each alone is "big enough", and together too big: no rewrite
    ],
)
def test_compaction_respects_target_rows(lake: Lake, sizes, target, files_after) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    n = 0
    for size in sizes:
        lake.append("std.decl", decl(*[(f"D{n + i}", 1, "A") for i in range(size)]))
        n += size
    lake.compact("std.decl", target_file_rows=target)
    files = list(lake.table("std.decl").scan().plan_files())
    assert len(files) == files_after
    assert all(f.file.record_count <= max(target, max(sizes)) for f in files)
    assert query(lake, "SELECT count(DISTINCT record_id) AS n FROM std.decl").to_pylist() == [{"n": n}]


def test_replace_swaps_everything_atomically(table: Lake) -> None:
    before = table.table("std.decl").current_snapshot().snapshot_id
    table.replace("std.decl", decl(("X", 1, "R")))
    assert contents(table) == [("X", 1, "R")]
    assert len(query(table, "SELECT * FROM std.decl", as_of=before)) == 3


def test_append_of_wrong_types_says_which_column(table: Lake) -> None:
    bad = decl(("D9", 1, "A")).set_column(2, "version", pa.array(["one"]))
    with pytest.raises(LakeError, match="'version'"):
        table.append("std.decl", bad)


def test_expire_snapshots_keeps_the_newest(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    for i in range(6):
        lake.append("std.decl", decl((f"D{i}", 1, "A")), batch_id=f"b{i}")
    lake.compact("std.decl", target_file_rows=100)
    assert lake.expire_snapshots("std.decl", timedelta(0), retain_last=2).expired == 5
    assert [h.batch_id for h in lake.history("std.decl")] == ["b5", None]
    # No batch_id column here, so only the snapshots kept can answer (see test_maintain.py).
    assert not lake.has_batch("std.decl", "b0") and lake.has_batch("std.decl", "b5")
    assert len(contents(lake)) == 6


def test_staged_files_are_seen_only_once_committed_and_discarded_ones_are_gone(table: Lake) -> None:
    """Writing files and committing them are two steps, so a caller can write before it takes the
    locks of its own transaction: staged rows are invisible until the one atomic commit."""
    before = contents(table)
    staged = table.stage("std.decl", decl(("D4", 1, "KRINC"), ("D5", 1, "KRPUS")))
    assert contents(table) == before
    snapshot = table.commit_staged("std.decl", staged, batch_id="b-staged")
    assert contents(table) == [*before, ("D4", 1, "KRINC"), ("D5", 1, "KRPUS")]
    last = table.history("std.decl")[-1]
    assert (last.snapshot_id, last.operation, last.batch_id) == (snapshot, "append", "b-staged")
    assert last.added_rows == 2 and table.has_batch("std.decl", "b-staged")

    dropped = table.stage("std.decl", decl(("D6", 1, "KRPUS")))
    io = table.table("std.decl").io
    assert all(io.new_input(f.file_path).exists() for f in dropped)
    table.discard_staged("std.decl", dropped)
    assert not any(io.new_input(f.file_path).exists() for f in dropped)
    assert len(contents(table)) == len(before) + 2
