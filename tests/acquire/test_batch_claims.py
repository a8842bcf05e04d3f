"""One process at a time works on a batch (decision 0094).

Two ingests of the same unit at once used to both derive and append it: the lake held every row
twice while the registry said once. Now the second is answered ``busy``; a crashed owner's claim
is taken over (at once on this machine, when its time runs out elsewhere); a runner that lost its
claim appends and commits nothing. Each case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from sciti.acquire import Runner, list_quarantine
from sciti.acquire.claims import this_machine
from sciti.acquire.errors import UnitBusy
from sciti.acquire.runner import BatchResult
from sciti.acquire.transports import FolderSpec, FolderWatcher, parse_transport
from sciti.acquire.transports.push import push
from sciti.ops import Batch, QuarantineRecord, session_scope, utcnow
from sciti.settings import Settings
from tests.acquire.conftest import HEADER, decl_connector, rows
from tests.conftest import ROOT, settings_env

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ROWS = 2_001
BAD_EVERY = 100  # an HS code not in HS 2022 every 100 rows: quarantined, so both counts matter


def csv_text(n: int = ROWS, prefix: str = "C") -> str:
    lines = [HEADER]
    for i in range(n):
        hs = "999999" if i % BAD_EVERY == 3 else "851713"
        lines.append(f"{prefix}{i:05d},2024-01-{1 + i % 28:02d},KRPUS,{i}.5,USD,{hs},")
    return "\n".join(lines) + "\n"


BAD = sum(1 for i in range(ROWS) if i % BAD_EVERY == 3)


@pytest.fixture(params=BACKENDS)
def instance(request: pytest.FixtureRequest, acq_settings: Settings) -> Settings:
    return on(request.param, acq_settings, request)


def on(backend: str, settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """``settings`` as they are (SQLite), or with the catalog and the operational database on a
    fresh PostgreSQL database."""
    if backend == "sqlite":
        return settings
    url = request.getfixturevalue("pg_database")
    return settings.model_copy(update={"catalog_uri": url, "ops_db_url": url})


def batches(settings: Settings) -> list[Batch]:
    with session_scope(settings.resolved_ops_db_url) as s:
        return list(s.scalars(select(Batch)))


def assert_stored_once(settings: Settings, stored: int) -> None:
    """The lake holds each stored record once, and exactly what the registry says it stored."""
    (batch,) = batches(settings)
    assert batch.status == "committed"
    assert (batch.received, batch.stored, batch.quarantined) == (ROWS, ROWS - BAD, BAD)
    assert batch.stored == stored
    for ident in ("std.declarations", "std.declaration_items"):
        ids = collections.Counter(r["record_id"] for r in rows(settings, ident))
        assert sum(ids.values()) == stored, f"{ident}: {sum(ids.values())} rows for {stored} records"
        assert len(ids) == stored
    assert len(rows(settings, "raw.decl")) == 1
    assert len(list_quarantine(settings)) == BAD


# -- two real processes -------------------------------------------------------------------------

# `sciti ingest` with every lake append slowed down, between its history check and the commit:
# where two ingests of one file once both found the batch absent and both wrote it.
SLOW_INGEST = """
import sys, time
from sciti.lake.catalog import Lake
for name in ("append", "append_files"):
    def slow(self, *args, _original=getattr(Lake, name), **kwargs):
        time.sleep(2.0)
        return _original(self, *args, **kwargs)
    setattr(Lake, name, slow)
from sciti.cli.main import app
sys.argv[0] = "sciti"
app()
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ingest_processes_of_one_file_store_it_once(
    backend, acq_settings: Settings, tmp_path: Path, request
) -> None:
    settings = on(backend, acq_settings, request)
    decl_connector(settings)
    Runner(settings)  # an instance whose schema is there, as `sciti init` leaves it
    path = tmp_path / "c1.csv"
    path.write_text(csv_text(), encoding="utf-8")
    env = {**os.environ, **settings_env(settings), "SCITI_LOG_JSON": "true"}
    command = [sys.executable, "-c", SLOW_INGEST, "ingest", "decl", str(path), "--json"]
    procs = [
        subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    done = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _, _ in done)
    outcomes = sorted(json.loads(out)[0]["status"] for _, out, _ in done)
    assert codes == [0, 75], done
    assert outcomes == ["busy", "committed"], done
    (busy_err,) = [err for code, _, err in done if code == 75]
    assert "being ingested by another process" in busy_err and "again later" in busy_err
    assert_stored_once(settings, ROWS - BAD)


# -- two runners in one process, one held inside its batch --------------------------------------


@contextmanager
def held(runner: Runner) -> Iterator[tuple[threading.Event, threading.Event]]:
    """``runner`` stops inside its next batch, claim taken and rows derived, before any append,
    until the second event is set."""
    inside, go = threading.Event(), threading.Event()
    original = runner._write

    def write_when_told(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert go.wait(120), "never released"
        return original(*args, **kwargs)

    runner._write = write_when_told  # type: ignore[method-assign]
    try:
        yield inside, go
    finally:
        go.set()


@contextmanager
def ingesting(runner: Runner, connector: Any, data: bytes, unit: str) -> Iterator[list[BatchResult]]:
    """``runner`` ingests ``data`` in a thread and is held inside the batch for the block's length;
    the list holds its result afterwards."""
    out: list[BatchResult] = []
    with held(runner) as (inside, go):
        thread = threading.Thread(target=lambda: out.append(runner.ingest_bytes(connector, data, unit)))
        thread.start()
        assert inside.wait(120), "the first ingest never reached its batch"
        try:
            yield out
        finally:
            go.set()
            thread.join(120)


def test_a_unit_another_runner_is_ingesting_is_busy_not_a_duplicate(instance: Settings) -> None:
    conn = decl_connector(instance)
    data = csv_text().encode()
    first, second = Runner(instance), Runner(instance)
    with ingesting(first, conn, data, "c1.csv") as out:
        other = second.ingest_bytes(conn, data, "c1.csv")
        assert other.status == "busy"
        assert "c1.csv is being ingested by another process" in (other.error or "")
        assert f"process {os.getpid()} on " in (other.error or "")
        assert other.stored == 0 and rows(instance, "std.declarations") == []
        assert second.recover() == []  # a live claim is not a crash
    (result,) = out
    assert (result.status, result.batch_id) == ("committed", other.batch_id)
    assert second.ingest_bytes(conn, data, "c1.csv").status == "duplicate"
    assert_stored_once(instance, ROWS - BAD)


def test_a_runner_that_lost_its_claim_appends_and_commits_nothing(instance: Settings) -> None:
    conn = decl_connector(instance)
    data = csv_text().encode()
    first = Runner(instance)
    # Its time ran out (say its machine stood still) and another process took the batch.
    with ingesting(first, conn, data, "c1.csv") as out, session_scope(instance.resolved_ops_db_url) as s:
        s.execute(update(Batch).values(claimed_by="elsewhere:4242:abcd1234"))
    (result,) = out
    assert result.status == "busy" and "taken over by another process" in (result.error or "")
    assert rows(instance, "std.declarations") == [] and rows(instance, "raw.decl") == []
    (batch,) = batches(instance)
    assert (batch.status, batch.claimed_by) == ("running", "elsewhere:4242:abcd1234")
    with session_scope(instance.resolved_ops_db_url) as s:
        assert s.scalars(select(QuarantineRecord)).all() == []
    # The other process died too: its claim runs out, and the batch is finished once.
    with session_scope(instance.resolved_ops_db_url) as s:
        s.execute(update(Batch).values(claimed_until=utcnow() - timedelta(seconds=1)))
    (recovered,) = Runner(instance).recover()
    assert (recovered.status, recovered.batch_id) == ("committed", batch.id)
    assert_stored_once(instance, ROWS - BAD)


def _crashed(settings: Settings, owner: str, *, until: timedelta) -> str:
    """A batch whose lake appends landed but whose commit did not: a process died in between."""
    conn = decl_connector(settings)
    done = Runner(settings).ingest_bytes(conn, csv_text().encode(), "c1.csv")
    with session_scope(settings.resolved_ops_db_url) as s:
        s.execute(update(Batch).values(status="running", claimed_by=owner, claimed_until=utcnow() + until))
        s.query(QuarantineRecord).delete()
    return done.batch_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_of_a_dead_process_on_this_machine_is_taken_at_once(instance: Settings) -> None:
    batch_id = _crashed(instance, f"{this_machine()}:{_dead_pid()}:abcd1234", until=timedelta(minutes=5))
    (recovered,) = Runner(instance).recover()
    assert (recovered.status, recovered.batch_id) == ("committed", batch_id)
    assert_stored_once(instance, ROWS - BAD)


def test_a_claim_from_another_machine_is_kept_until_its_time_runs_out(instance: Settings) -> None:
    batch_id = _crashed(instance, "elsewhere/0/0:4242:abcd1234", until=timedelta(minutes=5))
    runner = Runner(instance)
    assert runner.recover() == []
    again = runner.ingest_bytes(decl_connector(instance), csv_text().encode(), "c1.csv")
    assert again.status == "busy" and "process 4242 on elsewhere" in (again.error or "")
    with session_scope(instance.resolved_ops_db_url) as s:
        s.execute(update(Batch).values(claimed_until=utcnow() - timedelta(seconds=1)))
    (recovered,) = runner.recover()
    assert (recovered.status, recovered.batch_id) == ("committed", batch_id)
    assert_stored_once(instance, ROWS - BAD)
    (batch,) = batches(instance)
    assert batch.claimed_by is None and batch.claimed_until is None  # released by the commit


# -- the transports treat it as "try later" -------------------------------------------------------


def test_a_drop_file_a_manual_ingest_is_working_on_waits_for_the_next_round(acq_settings: Settings) -> None:
    conn = decl_connector(acq_settings)
    spec = parse_transport(
        {"type": "folder", "path": "decl", "poll_seconds": 0.1, "settle_seconds": 0, "attempts": 1},
        connector="decl",
    )
    assert isinstance(spec, FolderSpec)
    watcher = FolderWatcher(acq_settings, conn, spec, Runner(acq_settings))
    watcher.scan_once()  # makes the folders
    data = csv_text().encode()
    (watcher.root / "c1.csv").write_bytes(data)
    with ingesting(Runner(acq_settings), conn, data, "c1.csv") as out:
        assert watcher.scan_once() == []  # left in place; with attempts: 1 a failure would move it
        assert (watcher.root / "c1.csv").exists()
        assert not list((watcher.root / "failed").iterdir())
    assert out[0].status == "committed"
    (taken,) = watcher.scan_once()
    assert taken.ok and [r.status for r in taken.results] == ["duplicate"]
    assert taken.moved_to.parent.parent == watcher.root / "processed"
    assert_stored_once(acq_settings, ROWS - BAD)


def test_a_push_of_a_body_being_ingested_is_refused_with_409(acq_settings: Settings) -> None:
    conn = decl_connector(acq_settings)
    data = csv_text().encode()
    with ingesting(Runner(acq_settings), conn, data, "c1.csv"), pytest.raises(UnitBusy) as refused:
        push(Runner(acq_settings), conn, data, content_type=None, filename="c1.csv")
    assert refused.value.http_status == 409 and "again" in (refused.value.remedy or "")
    assert_stored_once(acq_settings, ROWS - BAD)
