"""SQL over the lake: correct rows after every kind of change, time travel, lock-down, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.typedef import Record
from pyiceberg.types import DecimalType, DoubleType, LongType, StringType

from sciti.lake import Lake, QueryError, query, query_reader
from sciti.lake.files import local_path

SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("qty", pa.int32()),
        pa.field("mass", pa.float32()),
        pa.field("value", pa.decimal128(9, 2)),
        pa.field("at", pa.timestamp("us", tz="UTC")),
    ]
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(ids, qty, mass=None, value=None) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "record_id": ids,
            "qty": pa.array(qty, pa.int32()),
            "mass": pa.array(mass or [float(q) for q in qty], pa.float32()),
            "value": pa.array(value or [Decimal(q) for q in qty], pa.decimal128(9, 2)),
            "at": pa.array([T0 + timedelta(days=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture
def decl(any_lake: Lake) -> Lake:
    """std.decl with a, b, c (qty 1, 2, 3) in one commit."""
    any_lake.ensure_table("std.decl", SCHEMA)
    any_lake.append("std.decl", rows(["a", "b", "c"], [1, 2, 3]), batch_id="b1")
    return any_lake


def ids_and(lake: Lake, column: str, **kw) -> list[tuple]:
    result = query(lake, f"SELECT record_id, {column} FROM std.decl ORDER BY record_id", **kw)
    return [tuple(r.values()) for r in result.to_pylist()]


def _delete(lake: Lake) -> None:
    lake.delete("std.decl", "record_id = 'b'")


def _upsert(lake: Lake) -> None:
    lake.upsert("std.decl", rows(["b", "d"], [20, 40]), batch_id="b2")


def _replace(lake: Lake) -> None:
    lake.replace("std.decl", rows(["z"], [9]))


def _add_column(lake: Lake) -> None:
    with lake.table("std.decl").update_schema() as u:
        u.add_column("office", StringType())
    lake.append("std.decl", rows(["d"], [4]).append_column("office", pa.array(["KRPUS"])))


def _rename(lake: Lake) -> None:
    with lake.table("std.decl").update_schema() as u:
        u.rename_column("qty", "quantity")
    lake.append("std.decl", rows(["d"], [4]).rename_columns(["record_id", "quantity", "mass", "value", "at"]))


def _widen_int(lake: Lake) -> None:
    with lake.table("std.decl").update_schema() as u:
        u.update_column("qty", LongType())
    big = rows(["d"], [0]).set_column(1, "qty", pa.array([5_000_000_000], pa.int64()))
    lake.append("std.decl", big)


def _widen_float(lake: Lake) -> None:
    with lake.table("std.decl").update_schema() as u:
        u.update_column("mass", DoubleType())
    lake.append("std.decl", rows(["d"], [4]).set_column(2, "mass", pa.array([0.1], pa.float64())))


def _widen_decimal(lake: Lake) -> None:
    with lake.table("std.decl").update_schema() as u:
        u.update_column("value", DecimalType(18, 2))
    wide = rows(["d"], [4]).set_column(
        3, "value", pa.array([Decimal("1234567890123.45")], pa.decimal128(18, 2))
    )
    lake.append("std.decl", wide)


def _compact(lake: Lake) -> None:
    lake.append("std.decl", rows(["d"], [4]))
    lake.compact("std.decl", 1000)


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        (_delete, "qty", [("a", 1), ("c", 3)]),
        (_upsert, "qty", [("a", 1), ("b", 20), ("c", 3), ("d", 40)]),
        (_replace, "qty", [("z", 9)]),
        (_add_column, "office", [("a", None), ("b", None), ("c", None), ("d", "KRPUS")]),
        (_rename, "quantity", [("a", 1), ("b", 2), ("c", 3), ("d", 4)]),
        (_widen_int, "qty", [("a", 1), ("b", 2), ("c", 3), ("d", 5_000_000_000)]),
        (_widen_float, "mass", [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 0.1)]),
        (_widen_decimal, "value", [("a", 1), ("b", 2), ("c", 3), ("d", Decimal("1234567890123.45"))]),
        (_compact, "qty", [("a", 1), ("b", 2), ("c", 3), ("d", 4)]),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_query_sees_each_change_and_time_travel_sees_before(decl: Lake, change, column, expected) -> None:
    before = decl.table("std.decl").current_snapshot().snapshot_id
    change(decl)
    assert ids_and(decl, column) == expected
    # pyiceberg's own reader is the independent reference
    reference = decl.table("std.decl").scan().to_arrow().sort_by("record_id")
    assert query(decl, "SELECT * FROM std.decl ORDER BY record_id").to_pylist() == reference.to_pylist()
    # the earlier snapshot still reads as it was (with the schema it had then)
    old_column = "qty" if column == "quantity" else column
    if column != "office":
        assert [r[0] for r in ids_and(decl, old_column, as_of=before)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "as_of",
    [
        pytest.param(lambda s1, t1: s1, id="snapshot id"),
        pytest.param(lambda s1, t1: str(s1), id="snapshot id text"),
        pytest.param(lambda s1, t1: t1, id="datetime"),
        pytest.param(lambda s1, t1: t1.isoformat(), id="iso text"),
        pytest.param(lambda s1, t1: t1.replace(tzinfo=None).isoformat(), id="naive iso is UTC"),
    ],
)
def test_as_of_applies_to_every_table(lake: Lake, as_of) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    lake.ensure_table("raw.kcs", pa.schema([("record_id", pa.string()), ("office", pa.string())]))
    lake.append("raw.kcs", pa.table({"record_id": ["a"], "office": ["10"]}))
    s1 = lake.append("std.decl", rows(["a"], [1]))
    t1 = datetime.fromtimestamp(lake.table("std.decl").snapshot_by_id(s1).timestamp_ms / 1000, tz=UTC)
    lake.append("raw.kcs", pa.table({"record_id": ["b"], "office": ["20"]}))
    lake.append("std.decl", rows(["b"], [2]))
    sql = "SELECT d.record_id, k.office FROM std.decl d JOIN raw.kcs k USING (record_id) ORDER BY 1"
    assert query(lake, sql).to_pylist() == [
        {"record_id": "a", "office": "10"},
        {"record_id": "b", "office": "20"},
    ]
    assert query(lake, sql, as_of=as_of(s1, t1)).to_pylist() == [{"record_id": "a", "office": "10"}]


def test_as_of_before_any_data_reads_empty_tables(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    lake.append("std.decl", rows(["a"], [1]))
    result = query(lake, "SELECT * FROM std.decl", as_of="2000-01-01T00:00:00Z")
    assert result.num_rows == 0
    assert result.schema.names == SCHEMA.names


@pytest.mark.parametrize(
    ("as_of", "reason"),
    [("yesterday", "neither a snapshot id nor an ISO timestamp"), ("12345", "is not a snapshot of std.decl")],
)
def test_bad_as_of_is_a_query_error(decl: Lake, as_of: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        query(decl, "SELECT * FROM std.decl", as_of=as_of)


def test_empty_table_and_no_table(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    empty = query(lake, "SELECT * FROM std.decl")
    assert empty.num_rows == 0 and empty.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert query(lake, "SELECT 42 AS answer").to_pylist() == [{"answer": 42}]


def test_types_come_back_as_stored(decl: Lake) -> None:
    result = query(decl, "SELECT * FROM std.decl ORDER BY record_id")
    assert result.schema.field("value").type == pa.decimal128(9, 2)
    assert result.column("at").to_pylist()[0] == T0


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM std.nope", "std.nope"),
        ("SELECT nope FROM std.decl", "nope"),
        ("SELECT 1; SELECT 2", "one SQL statement"),
        ("DELETE FROM std.decl", "only queries"),
        ("COPY (SELECT 1) TO 'out.csv'", "only queries"),
        ("ATTACH 'other.db'", "only queries"),
        ("SET enable_external_access = true", "only queries"),
        ("SELECT * FROM read_csv('/etc/hosts')", "Permission"),
        ("SELECT * FROM 'anything.parquet'", "Permission"),
        ("SELECT count(*) FROM std.decl JOIN read_text('/etc/hosts') ON true", "Permission"),
    ],
)
def test_bad_or_unsafe_sql_is_refused(decl: Lake, sql: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason) as info:
        query(decl, sql)
    assert "\n" not in info.value.message


def test_other_tables_files_are_not_readable(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    lake.ensure_table("sec.secret", SCHEMA)
    lake.append("std.decl", rows(["a"], [1]))
    lake.append("sec.secret", rows(["s"], [9]))
    secret = local_path(next(iter(lake.table("sec.secret").scan().plan_files())).file.file_path)
    with pytest.raises(QueryError, match="Permission"):
        query(lake, f"SELECT * FROM std.decl, read_parquet('{secret}')")


def test_tables_allow_list_hides_the_rest(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    lake.ensure_table("sec.secret", SCHEMA)
    assert query(lake, "SELECT count(*) AS n FROM std.decl", tables={"std.decl"}).to_pylist() == [{"n": 0}]
    with pytest.raises(QueryError, match="sec"):
        query(lake, "SELECT * FROM sec.secret", tables={"std.decl"})


def test_only_mentioned_tables_are_planned(lake: Lake) -> None:
    """A broken table the query does not mention costs nothing and breaks nothing."""
    lake.ensure_table("std.decl", SCHEMA)
    lake.ensure_table("raw.broken", SCHEMA)
    lake.append("std.decl", rows(["a"], [1]))
    lake.append("raw.broken", rows(["x"], [1]))
    for task in lake.table("raw.broken").scan().plan_files():
        Path(local_path(task.file.file_path)).unlink()
    assert query(lake, 'SELECT record_id FROM "std"."decl"').to_pylist() == [{"record_id": "a"}]
    with pytest.raises(QueryError):
        query(lake, "SELECT * FROM RAW.BROKEN")


def test_reader_streams_in_batches(lake: Lake) -> None:
    lake.ensure_table("std.decl", SCHEMA)
    n = 10_000
    lake.append("std.decl", rows([f"r{i}" for i in range(n)], list(range(n))))
    reader = query_reader(lake, "SELECT * FROM std.decl", batch_rows=1000)
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == n and len(sizes) > 1


def add_positional_delete(lake: Lake, ident: str, position: int) -> None:
    """Delete one row the way merge-on-read engines (Spark, Flink) do: a positional delete file."""
    table = lake.table(ident)
    data_file = next(iter(table.scan().plan_files())).file.file_path
    schema = pa.schema(
        [
            pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": b"2147483546"}),
            pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": b"2147483545"}),
        ]
    )
    path = Path(local_path(table.location())) / "data" / "pos-delete-0.parquet"
    pq.write_table(pa.table({"file_path": [data_file], "pos": [position]}, schema=schema), path)
    delete_file = DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=str(path),
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=1,
        file_size_in_bytes=path.stat().st_size,
    )
    delete_file.spec_id = 0
    with table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        append.append_data_file(delete_file)


def test_delete_files_from_other_engines_are_applied(decl: Lake) -> None:
    add_positional_delete(decl, "std.decl", 1)  # row "b"
    assert any(t.delete_files for t in decl.table("std.decl").scan().plan_files())
    assert ids_and(decl, "qty") == [("a", 1), ("c", 3)]
    # compaction applies the deletes into new files, after which DuckDB reads the files directly
    decl.compact("std.decl", 1000)
    assert not any(t.delete_files for t in decl.table("std.decl").scan().plan_files())
    assert ids_and(decl, "qty") == [("a", 1), ("c", 3)]


def test_real_kcs_declarations_join_hs_reference(lake: Lake, shared_data: Path) -> None:
    """Real data: KCS declarations in raw, the HS 2022 list in ref, joined across zones."""
    import duckdb
    from pyarrow import csv

    from sciti.lake import publish_ref

    kcs_csv = shared_data / "kcs" / "valid.csv"
    hs_csv = shared_data / "codelists" / "hs" / "harmonized-system.csv"
    kcs = csv.read_csv(kcs_csv, convert_options=csv.ConvertOptions(column_types={"HS6 Code": pa.string()}))
    kcs = kcs.rename_columns([c.lower().replace(" ", "_") for c in kcs.column_names])
    lake.ensure_table("raw.kcs", kcs.schema)
    for start in range(0, kcs.num_rows, 3000):  # a few commits, as batches would arrive
        lake.append("raw.kcs", kcs.slice(start, 3000))
    hs = csv.read_csv(hs_csv, convert_options=csv.ConvertOptions(column_types={"hscode": pa.string()}))
    publish_ref(lake, "hs", hs)

    sql = """SELECT h.description, count(*) AS n, sum(k.item_price) AS price
             FROM raw.kcs k JOIN ref.hs h ON h.hscode = substr(k.hs6_code, 1, 2)
             GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"""
    ours = query(lake, sql).to_pylist()
    anchor = duckdb.sql(
        f"""SELECT h.description, count(*) AS n, sum(k."Item Price") AS price
            FROM read_csv('{kcs_csv}', types={{'HS6 Code': 'VARCHAR'}}) k
            JOIN read_csv('{hs_csv}', types={{'hscode': 'VARCHAR'}}) h
              ON h.hscode = substr(k."HS6 Code", 1, 2)
            GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"""
    ).fetchall()
    assert len(ours) == 5
    assert [(r["description"], r["n"]) for r in ours] == [(d, n) for d, n, _ in anchor]
    assert [r["price"] for r in ours] == pytest.approx([p for _, _, p in anchor])
