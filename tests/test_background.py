"""The server's background work (transports, lake upkeep, retention) runs in a process of its own:
what it does shows on the server's /metrics and /healthz, a child that dies is started again, and
stopping the server (or the server dying) ends the child."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
import uuid

import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from sciti.access import list_entries
from sciti.access.privacy import RetentionSchedule
from sciti.api.app import create_app
from sciti.background import NICENESS, BackgroundJobs, jobs
from sciti.child import relay
from sciti.lake import open_lake
from sciti.lake.upkeep import LakeUpkeep, count
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.acquire.transports.conftest import CONNECTORS
from tests.acquire.transports.test_folder import CSV
from tests.acquire.transports.test_mqtt import wait_for
from tests.lake.test_maintain import SCHEMA, rows


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def instance(settings: Settings) -> Settings:
    migrate(settings.resolved_ops_db_url)
    return settings


def test_the_jobs_follow_the_settings(instance: Settings) -> None:
    on = instance.model_copy(
        update={"lake_keep_days": 3.0, "lake_keep_all_hours": 2.0, "lake_orphan_days": 5.0}
    )
    upkeep, retention = jobs(on)
    assert isinstance(upkeep, LakeUpkeep) and isinstance(retention, RetentionSchedule)
    assert upkeep.every_hours == 1.0
    assert upkeep.first_delay > 0 and retention.first_delay > 0  # never during start-up
    policy = upkeep.policy
    assert (policy.keep_days, policy.keep_all_hours, policy.orphan_days) == (3.0, 2.0, 5.0)
    assert upkeep.protected is not None and upkeep.protected() == {}  # no model trained yet
    assert upkeep.staged is not None and upkeep.staged() == []  # no scoring part waiting
    only_upkeep = instance.model_copy(update={"retention_every_hours": 0})
    assert [type(j) for j in jobs(only_upkeep)] == [LakeUpkeep]
    neither = only_upkeep.model_copy(update={"lake_upkeep_every_hours": 0})
    assert jobs(neither) == []  # both left to cron


def test_upkeep_and_retention_run_in_the_child_and_show_on_the_servers_metrics(instance: Settings) -> None:
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    lake.ensure_table("std.feed", SCHEMA)
    for i in range(3):
        lake.append("std.feed", rows(f"b{i}"), batch_id=f"b{i}")
    passes = metric("sciti_lake_upkeep_passes_total")
    background = BackgroundJobs(instance, first_delay=0.0)
    background.start()
    try:
        pid = background.pid
        assert pid is not None and pid != psutil.Process().pid
        assert wait_for(lambda: metric("sciti_lake_upkeep_passes_total") > passes, 90)
        child = psutil.Process(pid)
        assert child.nice() == psutil.Process().nice() + NICENESS  # see NICENESS: the server's own
        # The pass compacted the three appends into one file: a new snapshot, counted here.
        table = lake.table("std.feed")
        table.refresh()
        assert metric("sciti_lake_snapshots", table="std.feed") == len(table.metadata.snapshots) == 4
        assert metric("sciti_lake_upkeep_last_pass_seconds") > time.time() - 120
        with session_scope(instance.resolved_ops_db_url) as session:
            assert wait_for(lambda: bool(list_entries(session, action="retention.run")))
            assert {e.actor for e in list_entries(session, action="retention.run")} == {"retention-schedule"}
    finally:
        background.stop()
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_the_transports_run_in_the_child_and_report_to_healthz(instance: Settings) -> None:
    feeds = instance.model_copy(update={"connectors_dir": CONNECTORS, "buffer_max_seconds": 0.5})
    drop = feeds.resolved_drop_dir / "decl"  # the drop_decl test connector's folder
    drop.mkdir(parents=True)
    (drop / "h.csv.part").write_text(CSV, encoding="utf-8")
    os.replace(drop / "h.csv.part", drop / "h.csv")
    background = BackgroundJobs(feeds, first_delay=3600.0)
    assert background.transports_status == "starting"
    background.start()
    try:
        assert wait_for(lambda: background.transports_status == "running")
        assert background.transport_errors == {}  # every test connector's transport started
        assert wait_for(lambda: not (drop / "h.csv").exists())  # ingested by the child ...
        assert list((drop / "processed").rglob("h.csv"))  # ... and moved aside, never deleted
        lake = open_lake(feeds.resolved_catalog_uri, feeds.resolved_warehouse)
        assert lake.table("std.declarations").scan().to_arrow().num_rows == 2  # the third quarantined
    finally:
        background.stop()
    assert background.transports_status == "stopped"


@pytest.mark.postgres
def test_a_failing_transport_shows_as_degraded_until_it_recovers(instance: Settings, tmp_path) -> None:
    # A source database that does not exist: every extraction round fails. The API stays up
    # (healthz 200 with the transports "degraded"), /metrics names the connector, and the state
    # goes back to "running" once the source answers.
    connectors = tmp_path / "connectors"
    shutil.copytree(CONNECTORS / "sql_decl", connectors / "sql_decl")
    spec = connectors / "sql_decl" / "connector.yaml"
    missing = f"sciti_missing_{uuid.uuid4().hex[:8]}"
    source = f"postgresql+psycopg://postgres@127.0.0.1:5432/{missing}"
    spec.write_text(spec.read_text().replace("url_secret: sciti_test_source", f"url: '{source}'"))
    feeds = instance.model_copy(update={"connectors_dir": connectors})
    background = BackgroundJobs(feeds, first_delay=3600.0, watch_seconds=0.5)
    background.start()
    try:
        assert wait_for(lambda: background.transports_status == "degraded", 60)
        assert set(background.transport_errors) == {"sql_decl"}
        assert "failed round" in background.transport_errors["sql_decl"]
        assert metric("sciti_transport_problem", connector="sql_decl") == 1
        with TestClient(create_app(feeds, background=background)) as client:
            health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["checks"]["transports"] == "degraded"
        assert "sql_decl" not in health.text  # names are for authenticated eyes (/metrics, logs)
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{missing}"'))
        try:
            with create_engine(source).begin() as conn:
                conn.execute(
                    text(
                        "CREATE TABLE src_declarations (id int primary key, declaration_id text, version int,"
                        " office text, amount numeric, currency text, updated_at timestamptz)"
                    )
                )
            assert wait_for(lambda: background.transports_status == "running", 120)
            assert background.transport_errors == {}
            assert metric("sciti_transport_problem", connector="sql_decl") == 0
        finally:
            background.stop()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{missing}" WITH (FORCE)'))
            admin.dispose()
    finally:
        background.stop()


def test_a_background_process_that_died_is_started_again(instance: Settings) -> None:
    background = BackgroundJobs(instance, first_delay=3600.0, restart_seconds=0.1)
    restarts = metric("sciti_background_restarts_total")
    background.start()
    try:
        first = background.pid
        assert first is not None
        psutil.Process(first).kill()
        assert wait_for(lambda: background.pid not in (None, first))
        second = psutil.Process(background.pid)  # type: ignore[arg-type]
        assert second.is_running()
        assert metric("sciti_background_restarts_total") == restarts + 1
    finally:
        background.stop()
    assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE


def test_the_child_stops_by_itself_when_the_server_goes_away(instance: Settings) -> None:
    background = BackgroundJobs(instance, first_delay=3600.0)
    background.start()
    proc = background._process  # noqa: SLF001
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # what the kernel does when the server process dies
    assert proc.wait(timeout=120) == 0
    background.stop()


def test_what_the_child_prints_besides_events_is_shown_and_skipped() -> None:
    passes = metric("sciti_lake_upkeep_passes_total")
    lines = ["a library talking", "[1, 2]", '{"table": "std.x"}', '{"pass_ended": 1234.5}']
    script = f"print({chr(10).join(lines)!r})"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    relay(proc, count, logging.getLogger("test"))
    assert proc.wait(timeout=30) == 0
    assert metric("sciti_lake_upkeep_passes_total") == passes + 1
    assert metric("sciti_lake_upkeep_last_pass_seconds") == 1234.5


def test_events_after_the_server_is_gone_end_nothing_and_print_nothing() -> None:
    """A server ended by a signal never stops its child: the child's events meet a closed pipe."""
    script = (
        "import sys, time\n"
        "from sciti import child\n"
        "sys.stdin.read()\n"  # wait until the 'server' is gone
        "time.sleep(0.2)\n"
        "child.send({'pass_ended': 1.0})\n"
        "child.send({'pass_ended': 2.0})\n"
        "print('still here', file=sys.stderr)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.close()  # the server died: nobody reads the child's events any more
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None and proc.stderr.read().decode().strip() == "still here"  # no traceback
