"""`sciti demo setup` run again (a second `make run`) changes nothing: same rules and champion, so
it scores only records without an assessment, and the officers' queue keeps one item per record."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sciti.cli.main import app
from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.settings import get_settings
from tests.conftest import settings_env
from tests.risk.engine.conftest import build_instance


@pytest.fixture
def cli(tmp_path, shared_data, monkeypatch):
    instance = build_instance(tmp_path / "instance", shared_data)
    for key, value in settings_env(instance).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())  # rich wraps long lines

    yield run, instance
    get_settings.cache_clear()


def state(settings) -> tuple[int, dict[str, tuple[int, int]]]:
    """(assessments in the lake, queue status -> (items, distinct records))."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    n = query(lake, "SELECT count(*) AS n FROM risk.assessments")["n"][0].as_py()
    with session_scope(settings.resolved_ops_db_url) as session:
        q = select(
            RiskQueueItem.status, func.count(), func.count(func.distinct(RiskQueueItem.record_id))
        ).group_by(RiskQueueItem.status)
        return n, {status: (items, records) for status, items, records in session.execute(q)}


def test_a_second_setup_scores_only_new_records(cli) -> None:
    run, instance = cli
    first = run("demo", "setup")
    assert "champion model: declaration" in first, first
    assessed, queue = state(instance)
    items, records = queue["open"]
    assert assessed > 0 and items == records > 0

    second = run("demo", "setup")
    assert "champion model: unchanged" in second and "already assessed" in second, second
    assert state(instance) == (assessed, queue)  # nothing scored twice, nothing queued twice
