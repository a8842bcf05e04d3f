"""Play a generated world's e-lock feed onto an MQTT broker, as the e-lock platform would send it.

Each line of ``elock/messages.jsonl`` becomes one QoS 1 message on its own topic
(``elock/<lock>/gps`` or ``elock/<lock>/event``); the topic travels as the MQTT topic, not in the
payload. ``sciti serve`` with the ``demo-elock-mqtt`` connector subscribes to both topics.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sciti.demo.errors import DemoError

MESSAGES = Path("elock") / "messages.jsonl"


def publish_elock(
    world: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    topic_prefix: str = "",
    limit: int | None = None,
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Publish the world's e-lock messages (up to ``limit``, at most ``rate`` per second); the count.

    ``topic_prefix`` is put before every topic (``site1/`` -> ``site1/elock/EL000040/gps``).
    """
    source = Path(world) / MESSAGES
    if not source.is_file():
        raise DemoError(f"{source} does not exist", remedy="give the --out folder of `sciti demo generate`")
    lines = source.read_bytes().splitlines()
    if limit is not None:
        lines = lines[:limit]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sciti-elock-replay-{uuid.uuid4().hex[:8]}")
    try:
        client.connect(host, port)
    except OSError as exc:
        raise DemoError(
            f"cannot reach the MQTT broker at {host}:{port} ({exc})",
            remedy="start the broker or give --host/--port",
        ) from None
    client.loop_start()
    sent = 0
    try:
        for line in lines:
            if not line.strip():
                continue
            message = json.loads(line)
            topic = topic_prefix + message.pop("topic")
            client.publish(topic, json.dumps(message, ensure_ascii=False), qos=1).wait_for_publish(timeout=30)
            sent += 1
            if progress:
                progress(sent, len(lines))
            if rate:
                time.sleep(1.0 / rate)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent
