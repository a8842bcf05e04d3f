"""Long-lived acquisition transports: drop folder, SQL extraction by watermark, MQTT subscription.

HTTP push is served by the API (``POST /api/v1/ingest/{source}``) with the helpers in ``push``.
``start_all(settings)`` starts one background worker per connector that declares a transport and
returns a ``Transports`` whose ``stop()`` stops them (``sciti serve`` calls both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sciti.acquire.transports.buffer import StagingBuffer
from sciti.acquire.transports.errors import PayloadTooLarge, TransportConfigError, TransportError
from sciti.acquire.transports.folder import FolderWatcher, Taken
from sciti.acquire.transports.mqtt import MqttSubscriber
from sciti.acquire.transports.push import find_connector, push, result_json
from sciti.acquire.transports.spec import (
    FolderSpec,
    MqttSpec,
    SqlSpec,
    parse_transport,
    redact,
    transport_spec,
)
from sciti.acquire.transports.sql_extract import Cursor, SqlExtractor
from sciti.acquire.transports.worker import Worker
from sciti.settings import Settings

log = logging.getLogger("sciti.transports")
# A broker restart or a network blip is normal; a subscription lost for longer is a problem.
MQTT_GRACE_SECONDS = 30.0


@dataclass
class Transports:
    """The running workers, and the connectors whose transport could not start (with why)."""

    workers: list[Worker] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    _unsubscribed: dict[str, float] = field(default_factory=dict, repr=False)  # connector -> since

    def problems(self, now: float | None = None) -> dict[str, str]:
        """What is wrong now, per connector: a transport that could not start, a worker whose last
        round failed, an MQTT subscription lost for more than ``MQTT_GRACE_SECONDS``."""
        now = time.monotonic() if now is None else now
        out = dict(self.errors)
        for worker in self.workers:
            connector = getattr(worker, "connector", None)  # every transport's worker has one
            name = connector.name if connector is not None else worker.name
            if worker.failures:
                out[name] = f"{worker.failures} failed round(s) in a row: {worker.last_error}"
            elif isinstance(worker, MqttSubscriber) and not worker.subscribed.is_set():
                since = self._unsubscribed.setdefault(name, now)
                if now - since >= MQTT_GRACE_SECONDS:
                    out[name] = (
                        f"not subscribed to the MQTT broker {worker.spec.host}:{worker.spec.port} "
                        f"for {now - since:.0f} s (refused, unreachable or the subscription was denied)"
                    )
            else:
                self._unsubscribed.pop(name, None)
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker (each finishes its current step, MQTT flushes what it staged)."""
        for worker in self.workers:  # all at once, so slow ones stop in parallel
            worker.request_stop()
        for worker in self.workers:
            worker.stop(timeout)

    def __enter__(self) -> Transports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_worker(settings: Settings, connector: Any, runner: Any | None = None) -> Worker | None:
    """The worker for one connector's transport, not started; None when it has none."""
    spec = transport_spec(settings, connector)
    if spec is None:
        return None
    if runner is None:
        from sciti.acquire import Runner

        runner = Runner(settings)  # one runner per worker: workers never share a DuckDB connection
    if isinstance(spec, FolderSpec):
        return FolderWatcher(settings, connector, spec, runner)
    if isinstance(spec, SqlSpec):
        return SqlExtractor(settings, connector, spec, runner)
    return MqttSubscriber(settings, connector, spec, runner)


def start_all(settings: Settings) -> Transports:
    """Start the transport of every connector that has one; a broken one is logged and skipped."""
    from sciti.acquire import list_connectors, load_connector

    running = Transports()
    for found in list_connectors(settings, strict=False):
        try:
            connector = load_connector(settings, found.name)
            worker = make_worker(settings, connector)
        except Exception as exc:
            running.errors[found.name] = redact(str(exc))
            log.error(
                "transport not started", extra={"connector": found.name, "error": running.errors[found.name]}
            )
            continue
        if worker is not None:
            worker.start()
            running.workers.append(worker)
            log.info("transport started", extra={"connector": found.name, "worker": worker.name})
    return running


__all__ = [
    "Cursor",
    "FolderSpec",
    "FolderWatcher",
    "MqttSpec",
    "MqttSubscriber",
    "PayloadTooLarge",
    "SqlExtractor",
    "SqlSpec",
    "StagingBuffer",
    "Taken",
    "TransportConfigError",
    "TransportError",
    "Transports",
    "Worker",
    "find_connector",
    "make_worker",
    "parse_transport",
    "push",
    "redact",
    "result_json",
    "start_all",
    "transport_spec",
]
