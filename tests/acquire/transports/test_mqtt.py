"""MQTT subscription against the real Mosquitto on 127.0.0.1:1883."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sciti.acquire.transports import MqttSpec, MqttSubscriber, parse_transport
from sciti.acquire.transports.mqtt import message_id

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


def subscriber(tsettings, runner, prefix: str, client_id: str | None = None) -> MqttSubscriber:
    from sciti.acquire import load_connector

    spec = parse_transport(
        {
            "type": "mqtt",
            "host": HOST,
            "port": PORT,
            "topic": f"{prefix}/+/events",
            "qos": 1,
            "client_id": client_id or f"sciti-{prefix.rsplit('/', 1)[1]}",
        },
        connector="mqtt_decl",
    )
    assert isinstance(spec, MqttSpec)
    return MqttSubscriber(tsettings, load_connector(tsettings, "mqtt_decl"), spec, runner)


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
