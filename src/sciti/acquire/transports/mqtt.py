"""MQTT subscription (paho-mqtt, v2 callback API): stage every message durably, then acknowledge.

* The client uses a stable client id, unique to the instance, and a persistent session
  (``clean_session=False``), so the broker keeps QoS 1/2 messages that arrive while SCITI is down
  and delivers them on reconnect.
* ``manual_ack=True``: the PUBACK goes out only after the message is committed to the staging
  table. If staging fails because the database does not answer, no acknowledgement is sent and
  the session is reset after a growing pause (1 s up to 30 s), so the broker delivers the message
  again without a storm of reconnects.
* A message the database refuses while it answers (decision 0085) is not retried forever: a data
  error at once, any other error at its ``MAX_ATTEMPTS``-th delivery, makes it staged in its safe
  form (hash id, base64 payload) and acknowledged; the flush stores or quarantines it like any
  other message, so it is counted.
* A message id is the sender's (``id_field`` in a JSON payload) or the sha256 of topic and
  payload; a redelivered message finds its id already staged and is acknowledged and dropped.
* The worker loop flushes the buffer into the lake when it is due (rows or seconds).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.exc import DataError, IntegrityError

from sciti.acquire.transports.buffer import StagingBuffer
from sciti.acquire.transports.spec import MqttSpec, redact, secret
from sciti.acquire.transports.worker import Worker
from sciti.instance import instance_id
from sciti.settings import Settings

log = logging.getLogger("sciti.transports.mqtt")
MAX_ATTEMPTS = 3  # deliveries of one message the database refuses (while it answers) before its safe form
MAX_PAUSE = 30.0  # longest wait before reconnecting after the database did not answer
# Errors caused by the message itself: staging it again as it is can never succeed.
PERMANENT = (DataError, IntegrityError, ValueError, UnicodeError)


def message_id(topic: str, payload: bytes, id_field: str | None) -> str:
    """The sender's message id when the payload carries one, else a hash of topic and payload."""
    if id_field:
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get(id_field) not in (None, ""):
            return f"id:{doc[id_field]}"
    digest = hashlib.sha256(topic.encode("utf-8") + b"\x1f" + payload).hexdigest()
    return f"sha256:{digest}"


def payload_text(payload: bytes) -> str:
    """Payload as text for the staging table, exact: bytes that are not UTF-8, that hold a NUL
    (PostgreSQL text cannot) or that start with ``base64:`` themselves are kept as base64."""
    if b"\x00" not in payload and not payload.startswith(b"base64:"):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _base64(payload)


def _base64(payload: bytes) -> str:
    return "base64:" + base64.b64encode(payload).decode("ascii")


class MqttSubscriber(Worker):
    """Subscribes one connector to its topic and flushes its staging buffer into the lake."""

    def __init__(self, settings: Settings, connector: Any, spec: MqttSpec, runner: Any):
        super().__init__(f"mqtt-{connector.name}", min(1.0, max(0.05, settings.buffer_max_seconds / 4)))
        self.settings = settings
        self.connector = connector
        self.spec = spec
        self.buffer = StagingBuffer(
            settings, connector, runner, transport="mqtt", dedupe_seconds=spec.dedupe_seconds
        )
        self.client: paho.Client | None = None
        self.subscribed = threading.Event()
        self.staged = 0
        self.redelivered = 0
        self._reset = threading.Event()
        self._recovered = False
        self.refused: dict[str, int] = {}  # message id -> its deliveries the database refused
        self.set_aside = 0  # messages staged in their safe form
        self._pause = 0.0
        self._reconnect_at = 0.0

    # -- client ------------------------------------------------------------------------------
    @property
    def client_id(self) -> str:
        """The connector's own, else ``sciti-<instance id>-<connector>``: stable across restarts
        (the broker keeps our session) and never the same as another instance's."""
        return self.spec.client_id or f"sciti-{instance_id(self.settings.home)}-{self.connector.name}"

    def _connect(self) -> None:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        if self.spec.username:
            password = (
                secret(self.spec.password_secret, self.settings, actor=f"connector:{self.connector.name}")
                if self.spec.password_secret
                else None
            )
            client.username_pw_set(self.spec.username, password)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 30)
        client.connect_async(self.spec.host, self.spec.port, keepalive=self.spec.keepalive)
        client.loop_start()  # paho's network thread reconnects by itself after a broker outage
        self.client = client

    def _disconnect(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
            self.subscribed.clear()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "mqtt connect refused", extra={"connector": self.connector.name, "reason": str(reason_code)}
            )
            # Start over with a new client: the credential is resolved again (it may have been rotated).
            self._reset.set()
            self.wake()
            return
        log.info("mqtt connected", extra={"connector": self.connector.name, "host": self.spec.host})
        client.subscribe([(topic, self.spec.qos) for topic in self.spec.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if all(not rc.is_failure for rc in reason_codes):
            self.subscribed.set()
        else:
            log.error(
                "mqtt subscribe refused", extra={"connector": self.connector.name, "topic": self.spec.topic}
            )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        log.warning("mqtt disconnected", extra={"connector": self.connector.name, "reason": str(reason_code)})

    def _on_message(self, client, userdata, msg) -> None:
        if self._reset.is_set():  # the session is being reset: it comes again after the reconnect
            return
        mid = message_id(msg.topic, msg.payload, self.spec.id_field)
        fresh: bool | None
        try:
            fresh = self.buffer.stage(mid, f"mqtt:{msg.topic}#{mid}", payload_text(msg.payload))
        except Exception as exc:  # noqa: BLE001 - every failure is sorted below
            fresh = self._not_staged(msg, mid, exc)
            if fresh is None:  # not staged -> not acknowledged: the broker must deliver it again
                self._reset.set()
                self.wake()
                return
        self.refused.pop(mid, None)
        self._pause = 0.0
        if fresh:
            self.staged += 1
        else:
            self.redelivered += 1
        client.ack(msg.mid, msg.qos)
        if self.staged % self.buffer.max_rows == 0:
            self.wake()

    def _not_staged(self, msg: Any, mid: str, exc: Exception) -> bool | None:
        """After a failed stage: whether the message is now staged in its safe form (as ``stage``
        answers), or None to leave it unacknowledged for the broker to deliver again.

        The database not answering is an outage: wait (growing pause) and take it again. The
        database refusing it while answering is the message's fault: a data error at once, any
        other error at the ``MAX_ATTEMPTS``-th delivery, the message is staged in a form any
        database takes (its hash id, its payload as base64); the flush then stores it or
        quarantines it with a reason. Only when even that fails is the database at fault again.
        """
        name = self.connector.name
        error = redact(str(exc))
        if not self.buffer.reachable():
            self._pause = min(MAX_PAUSE, max(1.0, self._pause * 2))
            self._reconnect_at = time.monotonic() + self._pause
            log.error(
                "mqtt message not staged: the database does not answer; the broker will deliver it again",
                extra={"connector": name, "error": error, "retry_seconds": self._pause},
            )
            return None
        if len(self.refused) > 10_000:  # ids of messages that never came again
            self.refused.clear()
        attempts = self.refused.get(mid, 0) + 1
        self.refused[mid] = attempts
        if not isinstance(exc, PERMANENT) and attempts < MAX_ATTEMPTS:
            self._reconnect_at = time.monotonic() + 1.0
            log.error(
                "mqtt message not staged; the broker will deliver it again",
                extra={"connector": name, "error": error, "attempt": attempts},
            )
            return None
        safe = message_id(msg.topic, msg.payload, None)
        try:
            fresh = self.buffer.stage(safe, f"mqtt:{msg.topic}#{safe}", _base64(msg.payload))
        except Exception as again:  # noqa: BLE001 - the database, not the message: as an outage
            self._pause = min(MAX_PAUSE, max(1.0, self._pause * 2))
            self._reconnect_at = time.monotonic() + self._pause
            log.error(
                "mqtt message not staged, not even in its safe form; the broker will deliver it again",
                extra={"connector": name, "error": redact(str(again)), "retry_seconds": self._pause},
            )
            return None
        self.refused.pop(mid, None)
        self.set_aside += 1
        log.warning(
            "mqtt message refused by the database; staged in its safe form (hash id, base64 payload)",
            extra={"connector": name, "message_id": mid[:200], "staged_as": safe, "error": error},
        )
        return fresh

    # -- worker loop -------------------------------------------------------------------------
    def step(self) -> None:
        if not self._recovered:  # an interrupted flush is finished before anything new is taken
            self.buffer.recover()
            self._recovered = True
        if self._reset.is_set():
            self._reset.clear()
            self._disconnect()
        if self.client is None and time.monotonic() >= self._reconnect_at:
            self._connect()
        if self.buffer.due():
            self.buffer.flush()

    def close(self) -> None:
        self._disconnect()
        try:  # what was staged and acknowledged goes to the lake now rather than at next start
            self.buffer.flush()
        except Exception as exc:
            log.error(
                "final flush failed; staged messages stay for the next start",
                extra={"error": redact(str(exc))},
            )
