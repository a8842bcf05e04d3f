"""`sciti lake maintain` as an operator runs it (nightly, or by hand after a burst of commits)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from sciti.cli import lake as lake_cli
from sciti.lake import Lake, open_lake
from sciti.settings import Settings, get_settings

SCHEMA = pa.schema([pa.field("record_id", pa.string(), nullable=False), ("batch_id", pa.string())])


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group needs a sibling to keep its name
    lake_cli.register(app)
    return app


@pytest.fixture
def instance(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """std.a with 4 one-row commits, std.b with 2."""
    monkeypatch.setenv("SCITI_HOME", str(settings.home))
    monkeypatch.setenv("SCITI_CATALOG_URI", settings.resolved_catalog_uri)
    get_settings.cache_clear()
    open_lake.cache_clear()
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    for ident, n in (("std.a", 4), ("std.b", 2)):
        lake.ensure_table(ident, SCHEMA)
        for i in range(n):
            lake.append(ident, pa.table({"record_id": [f"r{i}"], "batch_id": [f"b{i}"]}), batch_id=f"b{i}")
    yield lake
    get_settings.cache_clear()
    open_lake.cache_clear()


@pytest.mark.parametrize(
    ("args", "snapshots"),
    [
        (["--keep-days", "0", "--keep-last", "1"], {"std.a": 1, "std.b": 1}),
        (["--table", "std.a", "--keep-days", "0", "--keep-last", "2"], {"std.a": 2, "std.b": 2}),
        ([], {"std.a": 5, "std.b": 3}),  # default retention keeps recent snapshots; files still compacted
    ],
)
def test_maintain(app: typer.Typer, instance: Lake, args: list[str], snapshots: dict[str, int]) -> None:
    result = CliRunner().invoke(app, ["lake", "maintain", *args])
    assert result.exit_code == 0, result.output
    assert {t: len(instance.history(t)) for t in snapshots} == snapshots
    assert "std.a" in result.output
    assert instance.has_batch("std.a", "b0")


def test_maintain_of_an_unknown_table_fails_with_a_reason(app: typer.Typer, instance: Lake) -> None:
    result = CliRunner().invoke(app, ["lake", "maintain", "--table", "std.nope"])
    assert result.exit_code == 1
    assert "no lake table 'std.nope'" in result.output
