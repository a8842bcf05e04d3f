"""Lake.append_files: Parquet written by DuckDB (with field ids) committed as one tagged snapshot."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from sciti.lake import Lake, LakeError
from sciti.lake.register import data_folder, field_ids

SCHEMA = pa.schema(
    [pa.field("id", pa.string()), pa.field("n", pa.int64()), pa.field("amount", pa.decimal128(18, 4))]
)


def _write(lake: Lake, ident: str, name: str, rows: int, columns: str = "id, n, amount") -> str:
    table = lake.table(ident)
    path = data_folder(table) / name
    ids = ", ".join(f"{c}: {i}" for c, i in field_ids(table).items() if c in columns)
    duckdb.sql(
        f"COPY (SELECT 'r' || i AS id, i AS n, (i / 4)::DECIMAL(18,4) AS amount FROM range({rows}) t(i)) "
        f"TO '{path}' (FORMAT parquet, FIELD_IDS {{{ids}}})"
    )
    return str(path)


@pytest.mark.parametrize(("sizes", "expected"), [([3], 3), ([2, 5], 7), ([0, 4], 4)])
def test_files_are_committed_once_with_the_batch_id(any_lake: Lake, sizes, expected) -> None:
    ident = "std.reg_test"
    any_lake.ensure_table(ident, SCHEMA)
    paths = [_write(any_lake, ident, f"b1-{k}.parquet", n) for k, n in enumerate(sizes)]
    before = len(any_lake.table(ident).snapshots())
    snapshot = any_lake.append_files(ident, paths, batch_id="b1")
    table = any_lake.table(ident)
    assert snapshot == table.current_snapshot().snapshot_id
    assert len(table.snapshots()) == before + 1  # one commit for all files
    assert any_lake.has_batch(ident, "b1") and not any_lake.has_batch(ident, "b2")
    rows = table.scan().to_arrow()
    assert rows.num_rows == expected
    assert rows.schema.field("amount").type == pa.decimal128(18, 4)


def test_nothing_to_add_makes_no_snapshot(lake: Lake) -> None:
    ident = "std.reg_empty"
    lake.ensure_table(ident, SCHEMA)
    assert lake.append_files(ident, [_write(lake, ident, "b-0.parquet", 0)], batch_id="b") is None
    assert lake.table(ident).current_snapshot() is None


def test_a_file_with_a_column_the_table_lacks_is_refused(lake: Lake) -> None:
    ident = "std.reg_bad"
    lake.ensure_table(ident, SCHEMA)
    path = data_folder(lake.table(ident)) / "x.parquet"
    duckdb.sql(f"COPY (SELECT 'a' AS id, 1 AS other) TO '{path}' (FORMAT parquet)")
    with pytest.raises(LakeError, match="other"):
        lake.append_files(ident, [str(path)], batch_id="b")


def test_files_with_list_columns_are_committed(lake: Lake) -> None:
    """A list column's leaves are named "element" in the Parquet schema; the table's column is the
    list itself (the files a scoring run staged are committed this way after an interruption)."""
    ident = "std.reg_lists"
    schema = pa.schema([pa.field("id", pa.string()), pa.field("reasons", pa.list_(pa.string()))])
    lake.ensure_table(ident, schema)
    rows = pa.table({"id": ["a", "b"], "reasons": [["over the band", "new trader"], []]}, schema=schema)
    files = lake.stage(ident, rows)
    paths = [f.file_path.removeprefix("file://") for f in files]
    lake.append_files(ident, paths, batch_id="lists")
    back = lake.table(ident).scan().to_arrow().sort_by("id")
    assert back["reasons"].to_pylist() == [["over the band", "new trader"], []]
