"""The durable staging buffer: bulk flushes, exactly once across crashes, redeliveries dropped."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from sciti.acquire.transports import StagingBuffer
from sciti.acquire.transports.mqtt import payload_text
from sciti.ops import QuarantineRecord, StagedRecord, session_scope
from tests.acquire.transports.conftest import CONNECTORS
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tsettings(request, tmp_path):
    """The staging table on SQLite and on the real PostgreSQL."""
    home = tmp_path / "instance"
    home.mkdir()
    extra = {}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        extra = {"catalog_uri": url, "ops_db_url": url}
    return make_settings(home, connectors_dir=CONNECTORS, buffer_max_seconds=0.5, **extra)


def message(i: int, **extra) -> str:
    doc = {
        "message_id": f"m-{i}",
        "declaration_id": f"D-{i:05d}",
        "version": 1,
        "office": "HKG01",
        "amount": 10 + i,
        "currency": "HKD",
        **extra,
    }
    return json.dumps(doc)


def make_buffer(tsettings, runner, **kw) -> StagingBuffer:
    from sciti.acquire import load_connector

    return StagingBuffer(tsettings, load_connector(tsettings, "mqtt_decl"), runner, **kw)


def stage_many(buf: StagingBuffer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        assert buf.stage(f"id:m-{i}", f"mqtt:test#{i}", message(i))


def declarations(runner) -> list[str]:
    if not runner.lake.exists("std.declarations"):
        return []
    return (
        runner.lake.table("std.declarations")
        .scan(selected_fields=("declaration_id",))
        .to_arrow()["declaration_id"]
        .to_pylist()
    )


def test_a_message_id_is_staged_once(tsettings, runner):
    buf = make_buffer(tsettings, runner)
    assert buf.stage("id:m-1", "mqtt:t#1", message(1)) is True
    assert buf.stage("id:m-1", "mqtt:t#1", message(1)) is False
    assert buf.pending() == 1


def test_one_flush_is_one_batch_with_few_files(tsettings, runner):
    buf = make_buffer(tsettings, runner)
    stage_many(buf, 500)
    [result] = buf.flush()
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 500, 500, 0)
    table = runner.lake.table("std.declarations")
    assert len(table.snapshots()) == 1
    assert len(list(table.scan().plan_files())) <= 2
    assert sorted(declarations(runner)) == [f"D-{i:05d}" for i in range(500)]
    assert buf.pending() == 0 and buf.flush() == []
    # A redelivery after the flush (the acknowledgement was lost) is recognised and dropped.
    assert buf.stage("id:m-7", "mqtt:t#7", message(7)) is False


def test_a_flush_is_bounded_by_max_rows(tsettings, runner):
    buf = make_buffer(tsettings, runner, max_rows=200)
    stage_many(buf, 450)
    results = buf.flush()
    assert [r.received for r in results] == [200, 200, 50]
    assert len(declarations(runner)) == 450


class Crash:
    """Fault injection: the process dies before or after the real runner commits the flush."""

    def __init__(self, real, after_commit: bool):
        self.real, self.after_commit = real, after_commit

    def ingest_rows(self, *args, **kwargs):
        if self.after_commit:
            self.real.ingest_rows(*args, **kwargs)
        raise SystemExit("killed")


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_restart_finishes_an_interrupted_flush_exactly_once(tsettings, runner, after_commit):
    stage_many(make_buffer(tsettings, runner), 120)
    with pytest.raises(SystemExit):
        make_buffer(tsettings, Crash(runner, after_commit)).flush()
    restarted = make_buffer(tsettings, runner)
    stage_many(restarted, 30, start=120)  # more arrived meanwhile: they form the next batch
    results = restarted.flush()
    assert [r.status for r in results] == ["duplicate" if after_commit else "committed", "committed"]
    assert sorted(declarations(runner)) == [f"D-{i:05d}" for i in range(150)]


def test_bad_payloads_are_quarantined_and_the_rest_stored(tsettings, runner):
    buf = make_buffer(tsettings, runner)
    stage_many(buf, 3)
    bad = {
        "b-1": payload_text(b"{not json"),
        "b-2": payload_text(b"[1, 2]"),
        "b-3": payload_text(b"\xff\xfe{}"),
        "b-4": message(9, currency="XXXX"),
    }
    for mid, text in bad.items():
        buf.stage(mid, f"mqtt:test#{mid}", text)
    results = buf.flush()
    assert sum(r.received for r in results) == 7
    assert sum(r.stored for r in results) == 3
    assert sum(r.quarantined for r in results) == 4
    with session_scope(tsettings.resolved_ops_db_url) as s:
        reasons = {q.locator: q.reason for q in s.scalars(select(QuarantineRecord))}
    # Each unreadable message is quarantined under its own message locator ...
    assert {"mqtt:test#b-1", "mqtt:test#b-2", "mqtt:test#b-3"} <= {loc.split(":line")[0] for loc in reasons}
    # ... a readable one with a bad value under its flush row, whose raw text names the message.
    [(loc, why)] = [(loc, why) for loc, why in reasons.items() if "ISO 4217" in why]
    assert "#row=" in loc
    with session_scope(tsettings.resolved_ops_db_url) as s:
        raw = s.scalars(select(QuarantineRecord.raw).where(QuarantineRecord.locator == loc)).one()
    assert json.loads(raw)["sciti_locator"] == "mqtt:test#b-4"


@pytest.mark.parametrize(
    ("staged", "max_rows", "max_seconds", "due"),
    [
        (0, 10, 0.0, False),
        (3, 10, 3600.0, False),
        (10, 10, 3600.0, True),
        (1, 10, 0.0, True),
    ],
)
def test_due_by_rows_or_age(tsettings, runner, staged, max_rows, max_seconds, due):
    buf = make_buffer(tsettings, runner, max_rows=max_rows, max_seconds=max_seconds)
    stage_many(buf, staged)
    assert buf.due() is due


def test_settled_ids_are_forgotten_after_the_dedupe_window(tsettings, runner):
    buf = make_buffer(tsettings, runner, dedupe_seconds=0)
    stage_many(buf, 5)
    buf.flush()
    with session_scope(tsettings.resolved_ops_db_url) as s:
        assert s.execute(select(func.count()).select_from(StagedRecord)).scalar_one() == 0


def quarantined(tsettings) -> dict[str, str]:
    with session_scope(tsettings.resolved_ops_db_url) as s:
        return {q.locator: q.reason for q in s.scalars(select(QuarantineRecord))}


def test_nul_empty_and_non_utf8_messages_are_quarantined_counted_and_the_rest_stored(tsettings, runner):
    # On PostgreSQL a NUL in a staged payload or a quarantine entry once failed the whole flush
    # (decision 0085); an empty message was acknowledged and counted nowhere.
    buf = make_buffer(tsettings, runner)
    stage_many(buf, 3)
    bad = {
        "n-1": b'{"message_id": "n-1", "office": "HK\x00G01"}',
        "e-1": b"",
        "e-2": b"",  # the same (empty) bytes again: a second message, counted again
        "u-1": b'{"office": "\xff"}',
    }
    for mid, payload in bad.items():
        assert buf.stage(mid, f"mqtt:test#{mid}", payload_text(payload))
    results = buf.flush()
    assert [r.status for r in results] == ["committed"] * 5
    assert (sum(r.received for r in results), sum(r.stored for r in results)) == (7, 3)
    assert sum(r.quarantined for r in results) == 4
    reasons = quarantined(tsettings)
    assert reasons["mqtt:test#e-1"].startswith("mqtt:test#e-1 is empty (0 bytes)")
    assert "mqtt:test#e-2" in reasons
    assert "NUL byte (0x00), first at byte 36 of the line" in reasons["mqtt:test#n-1:line 1"]
    assert "bytes are not valid UTF-8 (byte 13 of the line is 0xff)" in reasons["mqtt:test#u-1:line 1"]
    assert sorted(declarations(runner)) == [f"D-{i:05d}" for i in range(3)]


def test_a_nul_in_a_message_id_or_locator_is_staged_and_redeliveries_still_recognised(tsettings, runner):
    buf = make_buffer(tsettings, runner)
    assert buf.stage("id:m\x00-1", "mqtt:t#id:m\x00-1", message(1)) is True
    assert buf.stage("id:m\x00-1", "mqtt:t#id:m\x00-1", message(1)) is False
    # Valid JSON whose value holds a NUL (written \u0000): a row of the flush, quarantined by its value.
    assert buf.stage("id:m-2", "mqtt:t#2", message(2, currency="HK\x00D")) is True
    [result] = buf.flush()
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    [(locator, reason)] = quarantined(tsettings).items()
    assert "\u2400" in reason and "NUL byte (0x00)" in reason and "#row=" in locator


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"a": 1}', '{"a": 1}'),
        (b'{"a": "x\x00y"}', "base64:"),  # PostgreSQL text cannot hold a NUL
        (b"\xff\xfe", "base64:"),  # not UTF-8
        (b"base64:aGk=", "base64:"),  # text that would otherwise read as our own marker
        (b"", ""),
    ],
)
def test_a_staged_payload_is_exact(payload, expected):
    from sciti.acquire.transports.buffer import raw_bytes, storable

    text = payload_text(payload)
    assert text.startswith(expected) and "\x00" not in text
    assert raw_bytes(text) == payload
    assert raw_bytes(storable("{\x00}")) == b"{\x00}" and storable("{}") == "{}"
