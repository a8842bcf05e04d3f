"""MQTT subscription against the real Mosquitto on 127.0.0.1:1883."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.exc import DataError, OperationalError

from sciti.acquire.transports import MqttSpec, MqttSubscriber, parse_transport
from sciti.acquire.transports.mqtt import MAX_ATTEMPTS, message_id

pytestmark = pytest.mark.mqtt
HOST, PORT = "127.0.0.1", 1883


class Publisher:
    """A device publishing QoS 1 messages to the real broker."""

    def __init__(self):
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.connect(HOST, PORT)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher():
    pub = Publisher()
    yield pub
    pub.close()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of our own, so parallel runs on the shared broker never see each other."""
    return f"sciti-test/{uuid.uuid4().hex[:10]}"


def subscriber(
    tsettings, runner, prefix: str, client_id: str | None = "", connector: str = "mqtt_decl", **extra
) -> MqttSubscriber:
    """The test connector's subscriber; ``client_id=None`` leaves the instance's default."""
    from sciti.acquire import load_connector

    settings = {"type": "mqtt", "host": HOST, "port": PORT, "topic": f"{prefix}/+/events", "qos": 1, **extra}
    if client_id is not None:
        settings["client_id"] = client_id or f"sciti-{prefix.rsplit('/', 1)[1]}"
    spec = parse_transport(settings, connector=connector)
    assert isinstance(spec, MqttSpec)
    return MqttSubscriber(tsettings, load_connector(tsettings, connector), spec, runner)


def event(i: int) -> str:
    return json.dumps(
        {
            "message_id": f"ev-{i}",
            "declaration_id": f"D-{i:05d}",
            "version": 1,
            "office": "LMC01",
            "amount": i,
            "currency": "HKD",
        }
    )


def wait_for(predicate, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def stored_ids(runner) -> list[str]:
    if not runner.lake.exists("std.declarations"):
        return []
    return (
        runner.lake.table("std.declarations")
        .scan(selected_fields=("declaration_id",))
        .to_arrow()["declaration_id"]
        .to_pylist()
    )


def start(sub: MqttSubscriber) -> MqttSubscriber:
    sub.start()
    assert sub.subscribed.wait(20), "the subscription to the real broker was not confirmed"
    return sub


def test_500_messages_land_once_in_a_few_files(tsettings, runner, publisher, prefix):
    sub = start(subscriber(tsettings, runner, prefix))
    try:
        for i in range(500):
            publisher.send(f"{prefix}/lock-{i % 7}/events", event(i))
        publisher.send(f"{prefix}/lock-1/events", event(42))  # the device sends one message twice
        assert wait_for(lambda: len(stored_ids(runner)) >= 500 and sub.buffer.pending() == 0)
    finally:
        sub.stop()
    ids = stored_ids(runner)
    assert sorted(ids) == sorted(f"D-{i:05d}" for i in range(500))
    table = runner.lake.table("std.declarations")
    snapshots, files = len(table.snapshots()), len(list(table.scan().plan_files()))
    print(f"500 messages -> {snapshots} snapshots, {files} data files")
    assert snapshots <= 25 and files <= 25, (snapshots, files)  # not one per message
    assert sub.staged == 500 and sub.redelivered == 1


def test_messages_sent_while_down_arrive_after_restart(tsettings, runner, publisher, prefix):
    client_id = f"sciti-restart-{uuid.uuid4().hex[:8]}"
    start(subscriber(tsettings, runner, prefix, client_id)).stop()  # the broker now keeps our session
    for i in range(20):
        publisher.send(f"{prefix}/lock-1/events", event(i))  # nobody is listening
    sub = start(subscriber(tsettings, runner, prefix, client_id))
    try:
        assert wait_for(lambda: len(stored_ids(runner)) >= 20 and sub.buffer.pending() == 0)
    finally:
        sub.stop()
    assert sorted(stored_ids(runner)) == [f"D-{i:05d}" for i in range(20)]


def test_two_instances_on_one_broker_each_keep_their_own_session(
    tsettings, runner, publisher, prefix, tmp_path
):
    # Same connector, no client id set: the broker must see two clients, not one id that each
    # instance takes from the other (which splits the messages between them).
    from sciti.acquire import Runner

    other = tsettings.model_copy(update={"home": tmp_path / "other instance"})
    other.home.mkdir()
    other_runner = Runner(other)
    first = subscriber(tsettings, runner, prefix, None)
    second = subscriber(other, other_runner, prefix, None)
    assert first.client_id != second.client_id
    assert first.client_id == subscriber(tsettings, runner, prefix, None).client_id  # stable
    assert first.client_id.startswith("sciti-") and first.client_id.endswith("-mqtt_decl")
    subs = [start(first), start(second)]
    try:
        for i in range(30):
            publisher.send(f"{prefix}/lock-{i % 3}/events", event(i))
        both = (runner, other_runner)
        assert wait_for(lambda: all(len(stored_ids(r)) >= 30 for r in both), 30)
    finally:
        for sub in subs:
            sub.stop()
    expected = [f"D-{i:05d}" for i in range(30)]
    assert sorted(stored_ids(runner)) == expected and sorted(stored_ids(other_runner)) == expected


def test_stop_flushes_what_was_acknowledged(tsettings, runner, publisher, prefix):
    tsettings.buffer_max_seconds = 3600  # no timed flush: only stop() may write the lake
    sub = start(subscriber(tsettings, runner, prefix))
    for i in range(5):
        publisher.send(f"{prefix}/lock-1/events", event(i))
    assert wait_for(lambda: sub.staged == 5)
    assert stored_ids(runner) == []
    sub.stop()
    assert sorted(stored_ids(runner)) == [f"D-{i:05d}" for i in range(5)]


@pytest.mark.parametrize(
    ("topic", "payload", "id_field", "expected"),
    [
        ("a/b", b'{"message_id": "X-1", "v": 1}', "message_id", "id:X-1"),
        ("a/b", b'{"v": 1}', "message_id", "sha256:"),
        ("a/b", b"not json", "message_id", "sha256:"),
        ("a/b", b'{"message_id": "X-1"}', None, "sha256:"),
    ],
)
def test_message_id_rule(topic, payload, id_field, expected):
    assert message_id(topic, payload, id_field).startswith(expected)


def test_same_payload_on_two_topics_are_two_messages():
    assert message_id("lock-1/events", b"{}", "message_id") != message_id(
        "lock-2/events", b"{}", "message_id"
    )


# -- messages that are not plain good JSON (decision 0085) -------------------------------------


@pytest.fixture
def pg_tsettings(tmp_path, pg_database):
    """The test connectors on an instance whose catalog and operational database are PostgreSQL."""
    from tests.acquire.transports.conftest import CONNECTORS
    from tests.conftest import make_settings

    home = tmp_path / "pg instance"
    home.mkdir()
    return make_settings(
        home,
        connectors_dir=CONNECTORS,
        buffer_max_seconds=0.5,
        catalog_uri=pg_database,
        ops_db_url=pg_database,
    )


def batches(settings) -> list[tuple[int, int, int]]:
    from sqlalchemy import select

    from sciti.ops import Batch, session_scope

    with session_scope(settings.resolved_ops_db_url) as s:
        return [
            (b.received, b.stored, b.quarantined) for b in s.scalars(select(Batch)) if b.status == "committed"
        ]


def quarantine(settings) -> dict[str, str]:
    from sqlalchemy import select

    from sciti.ops import QuarantineRecord, session_scope

    with session_scope(settings.resolved_ops_db_url) as s:
        return {q.locator: q.reason for q in s.scalars(select(QuarantineRecord))}


@pytest.mark.postgres
def test_a_nul_message_on_postgres_is_quarantined_once_and_the_rest_stored(pg_tsettings, publisher, prefix):
    # Before: DataError -> no ack -> reconnect -> redelivery, thousands of times, nothing stored.
    from sciti.acquire import Runner

    runner = Runner(pg_tsettings)
    sub = start(subscriber(pg_tsettings, runner, prefix))
    try:
        publisher.send(f"{prefix}/lock-1/events", b'{"message_id": "nul", "office": "L\x00MC01"}')
        for i in range(3):
            publisher.send(f"{prefix}/lock-1/events", event(i))
        assert wait_for(lambda: len(stored_ids(runner)) >= 3 and sub.buffer.pending() == 0, 30)
    finally:
        sub.stop()
    assert sorted(stored_ids(runner)) == [f"D-{i:05d}" for i in range(3)]
    [(locator, reason)] = quarantine(pg_tsettings).items()
    assert locator.startswith(f"mqtt:{prefix}/lock-1/events#sha256:") and locator.endswith(":line 1")
    assert "NUL byte (0x00), first at byte 35 of the line" in reason
    counts = batches(pg_tsettings)
    assert (
        sum(c[0] for c in counts) == 4 and sum(c[1] for c in counts) == 3 and sum(c[2] for c in counts) == 1
    )
    assert sub.staged == 4 and sub.redelivered == 0 and sub.set_aside == 0


def test_an_empty_message_is_quarantined_under_its_locator_and_counted(tsettings, runner, publisher, prefix):
    sub = start(subscriber(tsettings, runner, prefix))
    try:
        publisher.send(f"{prefix}/lock-2/events", b"")
        publisher.send(f"{prefix}/lock-2/events", event(1))
        assert wait_for(lambda: sub.staged == 2 and sub.buffer.pending() == 0, 30)
    finally:
        sub.stop()
    mid = message_id(f"{prefix}/lock-2/events", b"", "message_id")
    locator = f"mqtt:{prefix}/lock-2/events#{mid}"
    assert quarantine(tsettings)[locator].startswith(f"{locator} is empty (0 bytes)")
    assert sorted(batches(tsettings)) == [(1, 0, 1), (1, 1, 0)]


def gps(i: int, lock: str = "EL-1") -> str:
    return json.dumps(
        {
            "msg_id": f"G{i:05d}",
            "elock_id": lock,
            "trip_id": "T-1",
            "ts": f"2024-05-01T08:{i:02d}:00",
            "kind": "gps",
            "lat": 22.3 + i / 1000,
            "lon": 114.1,
            "speed_kmh": 40.5,
            "battery_pct": 90,
        }
    )


def test_a_window_of_gps_fixes_only_is_stored_by_the_shipped_connector(tmp_path, publisher, prefix):
    # demo-elock-mqtt maps `event` only inside a CASE and `kind` in `where:`: a flush window
    # with no lock event once lost the whole window ("the unit has no column 'event'").
    from sciti.acquire import Runner
    from tests.conftest import make_settings

    home = tmp_path / "instance"
    home.mkdir()
    settings = make_settings(home, buffer_max_seconds=3600)  # the shipped connectors
    runner = Runner(settings)
    sub = start(
        subscriber(
            settings, runner, prefix, connector="demo-elock-mqtt", topic=f"{prefix}/+/gps", id_field="msg_id"
        )
    )
    try:
        for i in range(3):
            publisher.send(f"{prefix}/EL-1/gps", gps(i))
        assert wait_for(lambda: sub.staged == 3, 30)
    finally:
        sub.stop()  # one flush: one window holding the three fixes
    assert batches(settings) == [(3, 3, 0)] and quarantine(settings) == {}
    fixes = runner.lake.table("std.elock_fixes").scan().to_arrow()
    assert sorted(fixes["message_id"].to_pylist()) == ["G00000", "G00001", "G00002"]
    assert set(fixes["topic"].to_pylist()) == {f"{prefix}/EL-1/gps"}


class Refusing:
    """Fault injection: the database refuses the message ``victim`` (as it is) with ``error``."""

    def __init__(self, sub: MqttSubscriber, victim: str, error: Exception, reachable: bool = True):
        self.real, self.victim, self.error, self.up = sub.buffer.stage, victim, error, reachable
        self.calls = 0
        sub.buffer.stage = self.stage  # type: ignore[method-assign]
        sub.buffer.reachable = lambda: self.up  # type: ignore[method-assign]

    def stage(self, mid: str, locator: str, payload: str) -> bool:
        if mid == self.victim:
            self.calls += 1
            raise self.error
        return self.real(mid, locator, payload)


@pytest.mark.parametrize(
    ("error", "deliveries"),
    [
        (DataError("INSERT", {}, Exception("refused")), 1),  # the message's fault: at once
        (RuntimeError("something else"), MAX_ATTEMPTS),  # unknown: a few deliveries, then set aside
    ],
)
def test_a_message_the_database_refuses_is_set_aside_not_delivered_forever(
    tsettings, runner, publisher, prefix, error, deliveries
):
    sub = subscriber(tsettings, runner, prefix)
    refusing = Refusing(sub, "id:ev-7", error)
    start(sub)
    try:
        publisher.send(f"{prefix}/lock-1/events", event(7))
        publisher.send(f"{prefix}/lock-1/events", event(8))
        assert wait_for(lambda: len(stored_ids(runner)) >= 2 and sub.buffer.pending() == 0, 30)
        time.sleep(1.5)  # were it redelivered again, it would be now
    finally:
        sub.stop()
    assert refusing.calls == deliveries and sub.set_aside == 1
    assert sorted(stored_ids(runner)) == ["D-00007", "D-00008"]  # its safe form is a good message


def test_while_the_database_does_not_answer_messages_wait_unacknowledged(
    tsettings, runner, publisher, prefix
):
    sub = subscriber(tsettings, runner, prefix)
    outage = Refusing(sub, "id:ev-1", OperationalError("INSERT", {}, Exception("down")), reachable=False)
    start(sub)
    try:
        publisher.send(f"{prefix}/lock-1/events", event(1))
        time.sleep(4)
        during = outage.calls
        assert 1 <= during <= 4, during  # redelivered after 1 s, 2 s, ... not thousands of times
        assert stored_ids(runner) == [] and sub.set_aside == 0
        outage.victim = "none"  # the database is back
        outage.up = True
        assert wait_for(lambda: stored_ids(runner) == ["D-00001"] and sub.buffer.pending() == 0, 60)
    finally:
        sub.stop()
    assert quarantine(tsettings) == {}
