"""`sciti sql` and `sciti tables` as a data engineer runs them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sciti.cli.main import app
from sciti.lake import Lake, open_lake
from sciti.settings import Settings, get_settings

SCHEMA = pa.schema(
    [pa.field("record_id", pa.string(), nullable=False), ("office", pa.string()), ("value", pa.float64())]
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """An instance the CLI finds through SCITI_* variables, with std.decl holding 3 rows in 2 commits."""
    s: Settings = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    monkeypatch.setenv("SCITI_HOME", str(s.home))
    monkeypatch.setenv("SCITI_CATALOG_URI", s.resolved_catalog_uri)
    get_settings.cache_clear()
    open_lake.cache_clear()
    _engineer(monkeypatch)
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    lake.ensure_table("std.decl", SCHEMA)
    lake.append(
        "std.decl", pa.table({"record_id": ["a", "b"], "office": ["A[red]x", "Y"], "value": [1.5, 2.0]})
    )
    lake.append("std.decl", pa.table({"record_id": ["c"], "office": ["Y"], "value": [3.0]}))
    yield lake
    get_settings.cache_clear()
    open_lake.cache_clear()


def _engineer(monkeypatch: pytest.MonkeyPatch) -> None:
    """`sciti sql` runs as a user: a data engineer, through SCITI_USER."""
    from sciti.access import create_user
    from sciti.ops import migrate, session_scope

    url = get_settings().resolved_ops_db_url
    migrate(url)
    with session_scope(url) as session:
        create_user(session, "engineer", ["data_engineer"], service=True)
    monkeypatch.setenv("SCITI_USER", "engineer")


runner = CliRunner()

GROUP_BY = "SELECT office, count(*) AS n, sum(value) AS total FROM std.decl GROUP BY office ORDER BY office"


def test_table_output_shows_rows_count_and_time(instance: Lake) -> None:
    result = runner.invoke(app, ["sql", GROUP_BY])
    assert result.exit_code == 0, result.output
    assert "A[red]x" in result.output, "values are not read as markup"
    assert "2 rows" in result.output and "s" in result.output.splitlines()[-1]


@pytest.mark.parametrize(
    ("fmt", "parse"),
    [
        ("csv", lambda text: [tuple(r) for r in csv.reader(io.StringIO(text))][1:]),
        ("json", lambda text: [tuple(json.loads(line).values()) for line in text.splitlines()]),
    ],
)
def test_csv_and_json_go_to_stdout(instance: Lake, fmt: str, parse) -> None:
    result = runner.invoke(app, ["sql", GROUP_BY, "--format", fmt])
    assert result.exit_code == 0, result.output
    got = [(str(office), int(n), float(total)) for office, n, total in parse(result.stdout)]
    assert got == [("A[red]x", 1, 1.5), ("Y", 2, 5.0)]


def test_parquet_needs_output_and_writes_it(instance: Lake, tmp_path: Path) -> None:
    result = runner.invoke(app, ["sql", GROUP_BY, "--format", "parquet"])
    assert result.exit_code != 0 and "--output" in result.output
    out = tmp_path / "result.parquet"
    result = runner.invoke(app, ["sql", GROUP_BY, "--format", "parquet", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [
        {"office": "A[red]x", "n": 1, "total": 1.5},
        {"office": "Y", "n": 2, "total": 5.0},
    ]


@pytest.mark.parametrize(("limit", "rows"), [("1", 1), ("0", 0), ("10", 3)])
def test_limit(instance: Lake, limit: str, rows: int) -> None:
    result = runner.invoke(app, ["sql", "SELECT * FROM std.decl", "--format", "csv", "--limit", limit])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == rows + 1


def test_as_of_snapshot_and_timestamp(instance: Lake) -> None:
    first = instance.history("std.decl")[0]
    for as_of in (str(first.snapshot_id), first.committed_at.isoformat()):
        result = runner.invoke(
            app, ["sql", "SELECT count(*) AS n FROM std.decl", "-f", "csv", "--as-of", as_of]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == ['"n"', "2"]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["SELEC 1"], "syntax error"),
        (["SELECT * FROM std.unknown"], "sciti tables"),
        (["SELECT * FROM std.decl", "--as-of", "last week"], "neither a snapshot id nor an ISO timestamp"),
        (["DROP TABLE std.decl"], "only queries"),
        (["SELECT * FROM std.decl", "--format", "xml"], "xml"),
    ],
)
def test_errors_are_one_line_and_non_zero(instance: Lake, args: list[str], reason: str) -> None:
    result = runner.invoke(app, ["sql", *args])
    assert result.exit_code != 0
    assert reason in result.output
    assert "Traceback" not in result.output


def test_wide_results_are_cut_with_a_note(instance: Lake) -> None:
    cols = ", ".join(f"{i} AS column_{i}" for i in range(60))
    result = runner.invoke(app, ["sql", f"SELECT {cols}"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "more columns not shown" in result.output


def test_tables_lists_rows_and_snapshots(instance: Lake) -> None:
    result = runner.invoke(app, ["tables"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "std.decl" in line)
    assert " 3 " in line and str(instance.table("std.decl").current_snapshot().snapshot_id) in line


@pytest.mark.parametrize(
    ("as_of", "says"),
    [
        ("2020-01-01", "std.decl did not exist yet at 2020-01-01T00:00:00Z; it was created "),
        ("expired", "history before that was expired"),
    ],
)
def test_as_of_with_no_snapshot_then_says_why(instance: Lake, as_of: str, says: str) -> None:
    if as_of == "expired":
        first = instance.history("std.decl")[0]
        instance.append("std.decl", instance.table("std.decl").scan(limit=1).to_arrow())
        assert instance.expire_snapshots("std.decl", dt.timedelta(0), retain_last=1).expired >= 1
        as_of = first.committed_at.isoformat()  # the table had rows then; that history is gone
    result = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM std.decl", "-f", "csv", "--as-of", as_of])
    assert result.exit_code != 0, result.output
    assert says in result.output and "Traceback" not in result.output
