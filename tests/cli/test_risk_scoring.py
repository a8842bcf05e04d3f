"""`sciti risk score|report|flush`: batch scoring of what was ingested, on the KCS instance."""

from __future__ import annotations

import json

import pytest

from sciti.lake import open_lake, query
from sciti.settings import get_settings
from tests.risk.engine.conftest import build_instance


@pytest.fixture(scope="module")
def instance(tmp_path_factory, shared_data):
    return build_instance(tmp_path_factory.mktemp("score") / "instance", shared_data)


@pytest.fixture
def cli(instance, cli_on):
    return cli_on(instance)


def test_score_since_writes_assessments_and_fills_the_queue(cli, instance) -> None:
    out = json.loads(cli("risk", "score", "--since", "2021-01-15", "--kind", "declaration", "--json"))
    (result,) = out
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    n = query(
        lake, "SELECT count(*) FROM std.declarations WHERE acceptance_date >= DATE '2021-01-15'"
    ).column(0)
    assert result["records"] == result["assessments"] == n[0].as_py() > 1000
    stored = query(
        lake, "SELECT lane, count(*) AS n FROM risk.assessments WHERE path = 'batch' GROUP BY lane"
    )
    assert dict(zip(stored["lane"].to_pylist(), stored["n"].to_pylist(), strict=True)) == result["lanes"]
    # every record not released is queued (sampled ones are red by the packaged policy)
    assert result["queued"] == sum(v for k, v in result["lanes"].items() if k != "green") > 0
    assert result["sampled"] > 0

    table = cli("risk", "score", "--since", "2021-01-15", "--kind", "declaration")
    assert "Batch scoring" in table
    report = json.loads(cli("risk", "report", "--since", "2000-01-01", "--json"))
    by_rule = {r["rule_id"]: r for r in report["rules"]}
    assert by_rule["T-CN-DUTY"]["hits"] > 0 and by_rule["T-CN-DUTY"]["flag"] is None
    assert "Random compliance sample" in cli("risk", "report", "--since", "2000-01-01")
    assert "flushed 0 assessment(s)" in cli("risk", "flush")

    # Finishing a run that stopped part way: only records without an assessment are scored.
    args = ("risk", "score", "--since", "2021-01-15", "--kind", "declaration", "--unassessed-only")
    (again,) = json.loads(cli(*args, "--json"))
    assert (again["assessments"], again["queued"]) == (0, 0)
    assert again["skipped"] == result["records"]
    assert f"declaration: {result['records']:,} record(s) already had an assessment" in cli(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("risk", "score", "--since", "yesterday"), "is not a date"),
        (("risk", "score", "--kind", "spaceship"), "unknown record kind"),
        (("risk", "score", "--explain", "some"), "use flagged or all"),
        (("risk", "report", "--period", "year"), "unknown period"),
    ],
)
def test_bad_arguments_fail_with_a_reason(cli, args, message) -> None:
    assert message in cli(*args, code=1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SCITI_LAKE_KEEP_DAYS": "-1"},
            "lake_keep_days (SCITI_LAKE_KEEP_DAYS or sciti.toml): Input",
        ),
        ({"SCITI_OPS_DB_URL": "{catalog}"}, "catalog_uri and ops_db_url name the same SQLite file"),
    ],
)
def test_wrong_settings_fail_with_a_line_naming_them(cli, instance, monkeypatch, env, message) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(catalog=instance.resolved_catalog_uri))
    get_settings.cache_clear()
    out = cli("risk", "score", code=1)
    assert message in out and "Traceback" not in out
