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


def test_maintain_with_a_keep_all_window(app: typer.Typer, instance: Lake) -> None:
    result = CliRunner().invoke(app, ["lake", "maintain", "--keep-all-hours", "0.5"])
    assert result.exit_code == 0, result.output
    assert "std.a" in result.output
    assert len(instance.history("std.a")) == 5  # 4 appends + compaction, all in the last half hour


def test_maintain_thins_what_is_older_than_the_window(app: typer.Typer, instance: Lake) -> None:
    args = ["lake", "maintain", "--keep-all-hours", "0", "--keep-last", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    left = instance.table("std.a").metadata.snapshots
    # One per UTC hour the commits fell in (the newest of each; almost always one hour).
    assert len(left) == len({s.timestamp_ms // 3_600_000 for s in left})
    assert left[-1].snapshot_id == instance.table("std.a").metadata.current_snapshot_id
    assert instance.has_batch("std.a", "b0")


def test_maintain_rejects_a_negative_keep_all_window(app: typer.Typer, instance: Lake) -> None:
    result = CliRunner().invoke(app, ["lake", "maintain", "--keep-all-hours", "-1"])
    assert result.exit_code == 2


def test_help_explains_hourly_thinning(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["lake", "maintain", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--keep-all-hours" in result.output and "each hour" in result.output


def test_maintain_keeps_what_a_registered_model_was_trained_on(
    app: typer.Typer, instance: Lake, settings: Settings
) -> None:
    from sciti.ops import migrate, session_scope
    from sciti.ops.model_tables import ModelVersion

    trained_on = instance.table("std.a").metadata.snapshots[1].snapshot_id
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        s.add(
            ModelVersion(
                version="declaration-fraud-1",
                kind="declaration",
                label="fraud",
                snapshot_id="h",
                lake_snapshots={"std.a": trained_on},
                rows=2,
                artefact_key="k",
                created_by="ana",
            )
        )
    args = ["lake", "maintain", "--keep-days", "0", "--keep-all-hours", "0", "--keep-last", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    left = {s.snapshot_id for s in instance.table("std.a").metadata.snapshots}
    assert left == {trained_on, instance.table("std.a").metadata.current_snapshot_id}


def test_maintain_removes_orphans_but_not_a_scoring_part_awaiting_the_lake(
    app: typer.Typer, instance: Lake, settings: Settings
) -> None:
    import os
    import time
    from datetime import UTC, datetime
    from pathlib import Path

    from sciti.lake.files import local_path
    from sciti.ops import migrate, session_scope
    from sciti.ops.risk_tables import RiskScoringPart

    def stage(record: str) -> list[str]:
        return [
            local_path(f.file_path)
            for f in instance.stage("std.a", pa.table({"record_id": [record], "batch_id": [record]}))
        ]

    part, orphan = stage("p"), stage("o")
    week_ago = time.time() - 7 * 86_400
    for path in part + orphan:
        os.utime(path, (week_ago, week_ago))
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        s.add(RiskScoringPart(batch_id="run-p1", files=part, rows=1, claimed_at=datetime.now(UTC)))

    result = CliRunner().invoke(app, ["lake", "maintain", "--table", "std.a"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "files removed" in result.output and "freed" in result.output
    assert all(Path(p).exists() for p in part) and not any(Path(p).exists() for p in orphan)
    assert len(instance.history("std.a")) == 5  # recent history kept whole: only the orphan went
