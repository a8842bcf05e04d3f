"""Connectors use secrets by name: a rotated credential is picked up without a restart, and a
connector that fails to connect never shows the secret (logs, exception text, batch errors)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select, text

from sciti.access.secrets import Caller, SecretsService, forget
from sciti.acquire.transports import MqttSubscriber, SqlExtractor, parse_transport
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope
from tests.acquire.transports.conftest import CONNECTORS
from tests.conftest import make_settings

ADMIN = Caller("root", ("administrator",))
OLD, NEW = "old-Pa55-" + uuid.uuid4().hex[:6], "new-Pa55-" + uuid.uuid4().hex[:6]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A private Mosquitto that only lets in users of its password file."""

    def __init__(self, folder):
        self.folder, self.port = folder, _free_port()
        self.passwords = folder / "passwd"
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {self.passwords}\n"
            "persistence false\nuser root\n"
        )
        self.set_password("device", "device-pass")
        self.proc: subprocess.Popen | None = None

    def set_password(self, user: str, password: str) -> None:
        flag = ["-c"] if not self.passwords.exists() else []
        subprocess.run(["mosquitto_passwd", *flag, "-b", str(self.passwords), user, password], check=True)
        os.chmod(self.passwords, 0o600)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None

    def publish(self, topic: str, payload: str) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:6]}")
        client.username_pw_set("device", "device-pass")
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


def wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _stored(runner) -> list[str]:
    if not runner.lake.exists("std.declarations"):
        return []
    table = runner.lake.table("std.declarations").scan(selected_fields=("declaration_id",)).to_arrow()
    return sorted(table["declaration_id"].to_pylist())


def _error_columns(settings) -> str:
    with session_scope(settings.resolved_ops_db_url) as s:
        batches = [str(b.error or "") for b in s.scalars(select(Batch))]
        quarantined = [repr(q.__dict__) for q in s.scalars(select(QuarantineRecord))]
    return "\n".join(batches + quarantined)


@pytest.mark.mqtt
def test_rotated_mqtt_password_is_picked_up_without_restart_and_never_logged(tmp_path, broker, caplog):
    from sciti.acquire import Runner, load_connector

    caplog.set_level(logging.DEBUG)
    home = tmp_path / "instance"
    home.mkdir()
    settings = make_settings(
        home, connectors_dir=CONNECTORS, buffer_max_seconds=0.2, secrets_cache_seconds=0.2
    )
    migrate(settings.resolved_ops_db_url)
    forget()
    secrets = SecretsService(settings)
    secrets.put("mqtt-pass", OLD, ADMIN)
    broker.set_password("sciti", OLD)
    broker.start()
    spec = parse_transport(
        {
            "type": "mqtt",
            "port": broker.port,
            "topic": "decl/+",
            "username": "sciti",
            "password": "secret:mqtt-pass",
            "client_id": f"sciti-{uuid.uuid4().hex[:6]}",
        },
        connector="mqtt_decl",
    )
    assert spec.password_secret == "mqtt-pass"
    runner = Runner(settings)
    sub = MqttSubscriber(settings, load_connector(settings, "mqtt_decl"), spec, runner)
    sub.start()
    try:
        assert sub.subscribed.wait(20)
        broker.publish("decl/1", '{"message_id": "m1", "declaration_id": "D-1", "version": 1}')
        assert wait_for(lambda: _stored(runner) == ["D-1"])
        # The broker's password is changed and the broker restarted: SCITI is refused ...
        broker.stop()
        broker.set_password("sciti", NEW)
        broker.start()
        assert wait_for(lambda: "mqtt connect refused" in caplog.text)
        assert not sub.subscribed.is_set()
        # ... until the secret is rotated in the store; the running subscriber picks it up.
        secrets.rotate("mqtt-pass", NEW, ADMIN)
        assert sub.subscribed.wait(20), "the rotated password was not picked up"
        broker.publish("decl/2", '{"message_id": "m2", "declaration_id": "D-2", "version": 1}')
        assert wait_for(lambda: _stored(runner) == ["D-1", "D-2"])
    finally:
        sub.stop()
    seen = caplog.text + repr(sub.last_error) + _error_columns(settings)
    assert OLD not in seen and NEW not in seen


@pytest.mark.postgres
def test_sql_source_secret_rotation_and_failure_show_no_secret(tmp_path, pg_database, caplog):
    """The DSN is a secret: a wrong one fails without showing it; a rotated one is used next run."""
    from sciti.acquire import Runner, load_connector

    caplog.set_level(logging.DEBUG)
    home = tmp_path / "instance"
    home.mkdir()
    settings = make_settings(home, connectors_dir=CONNECTORS, secrets_cache_seconds=0)
    migrate(settings.resolved_ops_db_url)
    forget()
    source = create_engine(pg_database)
    with source.begin() as c:
        c.execute(
            text(
                "CREATE TABLE src_declarations (id bigserial PRIMARY KEY, declaration_id text, version int,"
                " office text, amount numeric(18,2), currency text, updated_at timestamptz NOT NULL)"
            )
        )
        c.execute(
            text(
                "INSERT INTO src_declarations (declaration_id, version, office, amount, currency, updated_at)"
                " VALUES ('D-9', 1, 'HKG01', 1, 'HKD', now() - interval '1 hour')"
            )
        )
    source.dispose()
    secrets = SecretsService(settings)
    # Version 1 points at a server that is not there, with a password inside the URL.
    server, _, database = pg_database.rpartition("/")
    wrong = f"postgresql+psycopg://reader:{OLD}@127.0.0.1:{_free_port()}/{database}"
    secrets.put("kcs-db", wrong, ADMIN)
    connector = load_connector(settings, "sql_decl")
    spec = parse_transport(
        {
            "type": "sql",
            "url": "secret:kcs-db",
            "table": "src_declarations",
            "watermark": "updated_at",
            "tiebreak": "id",
            "every_seconds": 0.2,
        },
        connector="sql_decl",
    )
    runner = Runner(settings)
    extractor = SqlExtractor(settings, connector, spec, runner)
    extractor.start()  # the long-lived worker: it logs its failures and keeps going
    try:
        assert wait_for(lambda: extractor.failures >= 1)
        with pytest.raises(Exception) as failed:
            extractor.run_once()
        # Rotation: the next round uses the new value, no restart.
        secrets.rotate("kcs-db", pg_database.replace("postgres@", f"postgres:{NEW}@"), ADMIN)
        assert wait_for(lambda: _stored(runner) == ["D-9"])
    finally:
        extractor.stop()
    seen = (
        caplog.text
        + str(failed.value)
        + repr(failed.value)
        + repr(extractor.last_error)
        + _error_columns(settings)
    )
    seen += extractor.describe()
    assert "transport step failed" in caplog.text
    assert OLD not in seen and NEW not in seen


@pytest.mark.parametrize(
    "transport",
    [
        {"type": "mqtt", "topic": "t", "username": "u", "password": OLD},
        {
            "type": "sql",
            "url": "postgresql://r@h/db",
            "password": OLD,
            "table": "t",
            "watermark": "w",
            "tiebreak": "i",
        },
    ],
)
def test_a_password_written_in_a_connector_is_refused_without_echo(transport):
    from sciti.acquire.transports import TransportConfigError

    with pytest.raises(TransportConfigError, match="never written in a connector") as info:
        parse_transport(transport, connector="c")
    assert OLD not in str(info.value)


def test_the_secrets_map_holds_names_only(tmp_path):
    from sciti.acquire import load_connector
    from sciti.acquire.errors import ConnectorError

    folder = tmp_path / "connectors" / "c"
    folder.mkdir(parents=True)
    body = "name: c\nsource: c\nformat: jsonl\nsecrets: {db: 'secret:kcs-db', key: %s}\n"
    (folder / "connector.yaml").write_text(body % "partner-key")
    settings = make_settings(tmp_path, connectors_dir=tmp_path / "connectors")
    assert load_connector(settings, "c").secrets == {"db": "kcs-db", "key": "partner-key"}
    (folder / "connector.yaml").write_text(body % f"'https://u:{OLD}@api'")
    with pytest.raises(ConnectorError, match="never hold a value") as info:
        load_connector(settings, "c")
    assert OLD not in str(info.value)
