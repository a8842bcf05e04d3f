"""One batch of a source reads what is stored and writes at a time (decision 0119).

Two batches of one source that both read the lake before either commits each miss the other's
rows. The tests below hold each batch at its first read of what is stored until the other one
arrives there too (or a few seconds pass): with the source's lock the second cannot arrive before
the first has committed, without it both read an empty lake.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sciti.acquire import BatchResult, Runner, load_connector, source_lock
from sciti.acquire.source_lock import SourceBusy, hold_source
from sciti.model import get_kind
from sciti.ops import Batch, session_scope
from sciti.settings import Settings
from tests.acquire.conftest import HEADER, decl_connector, rows
from tests.acquire.test_batch_claims import on
from tests.acquire.test_wco_versions import AMEND_1, AMEND_2, MRN, versions
from tests.conftest import ROOT, make_settings, settings_env

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MEET_SECONDS = 3.0


@pytest.fixture(params=BACKENDS)
def instance(request: pytest.FixtureRequest, acq_settings: Settings) -> Settings:
    settings = on(request.param, acq_settings, request)
    Runner(settings)  # the schema, as `sciti init` leaves it
    return settings


@pytest.fixture(params=BACKENDS)
def shipped(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """An instance with the connectors SCITI ships (wco-dec)."""
    settings = on(request.param, make_settings(tmp_path / "shipped"), request)
    Runner(settings)
    return settings


def meeting_at_first_read(runners: list[Runner]) -> None:
    """Each runner waits at its batch's first read of the stored records until every runner is
    there, or MEET_SECONDS pass (then the others no longer wait either)."""
    barrier = threading.Barrier(len(runners), timeout=MEET_SECONDS)
    for runner in runners:
        original, first = runner._stored, [True]

        def stored(*args: Any, _original=original, _first=first) -> Any:
            if _first[0]:
                _first[0] = False
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()
            return _original(*args)

        runner._stored = stored  # type: ignore[method-assign]


def at_once(settings: Settings, connector_name: str, units: list[tuple[str, bytes]]) -> list[BatchResult]:
    runners = [Runner(settings) for _ in units]
    meeting_at_first_read(runners)
    connector = load_connector(settings, connector_name)
    out: dict[int, BatchResult] = {}

    def run(i: int) -> None:
        out[i] = runners[i].ingest_bytes(connector, units[i][1], units[i][0])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(units))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return [out[i] for i in range(len(units))]


def test_two_amendments_of_one_declaration_at_once_are_versions_2_and_3(shipped, shared_data: Path) -> None:
    samples = shared_data / "wco" / "samples"
    results = at_once(shipped, "wco-dec", [(n, (samples / n).read_bytes()) for n in (AMEND_1, AMEND_2)])
    assert [(r.status, r.stored) for r in results] == [("committed", 1), ("committed", 1)], results
    assert sorted(v for v, _ in versions(shipped, MRN)) == [2, 3]
    ids = Counter(r["record_id"] for r in rows(shipped, get_kind("declaration").ident))
    assert max(ids.values()) == 1


def test_one_record_in_two_files_at_once_is_stored_once(instance) -> None:
    decl_connector(instance)
    both = "D00001,2024-01-02,KRPUS,10.5,USD,851713,"
    units = [
        (f"f{i}.csv", f"{HEADER}\n{both}\nD0000{i + 1},2024-01-02,KRPUS,1,USD,851713,\n".encode())
        for i in (1, 2)
    ]
    results = at_once(instance, "decl", units)
    assert sorted((r.status, r.stored, r.already_stored) for r in results) == [
        ("committed", 1, 1),
        ("committed", 2, 0),
    ]
    ids = sorted(r["declaration_id"] for r in rows(instance, "std.declarations"))
    assert ids == ["D00001", "D00002", "D00003"]
    assert len(rows(instance, "std.declaration_items")) == 3


def test_a_second_holder_waits_until_the_first_lets_go(instance) -> None:
    order: list[str] = []
    with hold_source(instance, "decl"):
        second = threading.Thread(target=lambda: _hold_and_note(instance, order))
        second.start()
        time.sleep(0.5)
        order.append("first done")
    second.join(30)
    assert order == ["first done", "second held"]


def _hold_and_note(settings: Settings, order: list[str]) -> None:
    with hold_source(settings, "decl"):
        order.append("second held")


def test_other_sources_do_not_wait(instance) -> None:
    with hold_source(instance, "decl"), hold_source(instance, "kcs", wait=0.0):
        pass


def test_a_holder_that_never_lets_go_leaves_the_waiter_busy_with_a_reason(instance) -> None:
    with hold_source(instance, "decl"):
        started = time.monotonic()
        with pytest.raises(SourceBusy) as caught, hold_source(instance, "decl", wait=0.4):
            pass
    assert 0.4 <= time.monotonic() - started < 10
    assert "another batch of source decl" in str(caught.value)
    assert caught.value.http_status == 409 and "again later" in caught.value.remedy


HOLD = """
import sys, time
from sciti.acquire.source_lock import hold_source
from sciti.settings import get_settings
with hold_source(get_settings(), "decl"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_the_lock_of_a_killed_process_is_free_at_once(instance) -> None:
    env = {**os.environ, **settings_env(instance)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(SourceBusy), hold_source(instance, "decl", wait=0.2):
            pass
    finally:
        proc.kill()
        proc.wait(30)
    with hold_source(instance, "decl", wait=5.0):
        pass


def test_a_batch_that_waited_too_long_is_busy_and_taken_at_once_when_sent_again(
    instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = decl_connector(instance)
    data = f"{HEADER}\nD00001,2024-01-02,KRPUS,10.5,USD,851713,\n".encode()
    monkeypatch.setattr(source_lock, "WAIT_SECONDS", 0.3)
    with hold_source(instance, "decl"):
        busy = Runner(instance).ingest_bytes(connector, data, "late.csv")
    assert busy.status == "busy" and "another batch of source decl" in (busy.error or "")
    with session_scope(instance.resolved_ops_db_url) as s:
        (batch,) = s.scalars(select(Batch))
        assert (batch.status, batch.claimed_by) == ("running", None)  # kept, and free for the retry
    again = Runner(instance).ingest_bytes(connector, data, "late.csv")
    assert (again.status, again.batch_id, again.stored) == ("committed", busy.batch_id, 1)
    assert len(rows(instance, "std.declarations")) == 1
