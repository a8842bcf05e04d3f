"""The server's background work in a process of its own: the acquisition transports (drop folders,
SQL extraction, MQTT subscriptions), lake upkeep and personal-data retention.

All three do heavy Python work: parsing and validating what arrives, writing Parquet, committing
to the catalogue; upkeep and retention for seconds to minutes at a time. On threads of the API
process they held the interpreter lock meanwhile, and every real-time answer waited behind them
(bench/background_latency.py). So ``sciti serve`` runs them in a child process (sciti.child),
``python -m sciti.background``, where they use another core.

The child sends what it did as events (sciti.child.send): upkeep's counts go on the server's
``/metrics``, the transports' state on its ``/healthz``. If the child dies, the server starts it
again after ``restart_seconds`` (the jobs begin again from their first delay; the transports pick
up where their cursors and the broker left them) and counts it (``sciti_background_restarts_total``).
Decision 0079.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

from prometheus_client import Counter, Gauge

from sciti import child
from sciti.access.privacy import RetentionSchedule
from sciti.acquire.transports import Transports, start_all
from sciti.lake import open_lake
from sciti.lake.upkeep import LakeUpkeep, UpkeepPolicy, count
from sciti.logs import setup_logging
from sciti.periodic import Periodic
from sciti.risk.engine.scoring_parts import staged_files
from sciti.risk.models import trained_on_snapshots
from sciti.settings import Settings

log = logging.getLogger("sciti.background")
RESTARTS = Counter(
    "sciti_background_restarts",
    "Times the background jobs process (lake upkeep, retention) ended and was started again.",
)
PROBLEMS = Gauge(
    "sciti_transport_problem",
    "1 while a connector's transport has a problem (not started, failing rounds, broker lost); the "
    "server log says what.",
    ["connector"],
)
RESTART_SECONDS = 30.0
WATCH_SECONDS = 10.0  # how often the child looks at its transports' state
MODULE = "sciti.background"
# The server's priority, unlike the flusher's (+10). A transport writes each message it receives
# to the operational database before acknowledging it, and the real-time answers need that
# database's write lock too. At a lower priority the child was, most likely, descheduled while
# holding the lock, and the answers waited longer: p99 286 ms against 53 ms at the same priority
# (2 cores, SQLite, 200 MQTT messages/s; decision 0079). On another core it does not slow the API.
NICENESS = 0


def jobs(
    settings: Settings, *, report: child.Report = count, first_delay: float | None = None
) -> list[Periodic]:
    """The jobs the settings schedule, not started yet. Upkeep keeps the snapshots registered models
    were trained on and the files of scoring parts awaiting the lake."""
    delay = {} if first_delay is None else {"first_delay": first_delay}
    out: list[Periodic] = []
    if settings.lake_upkeep_every_hours <= 0 and settings.retention_every_hours <= 0:
        return out  # both left to cron: no need to open the lake
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if settings.lake_upkeep_every_hours > 0:
        policy = UpkeepPolicy(
            keep_days=settings.lake_keep_days,
            keep_all_hours=settings.lake_keep_all_hours,
            orphan_days=settings.lake_orphan_days,
        )
        url = settings.resolved_ops_db_url
        upkeep = LakeUpkeep(
            lake,
            settings.lake_upkeep_every_hours,
            policy,
            protected=lambda: trained_on_snapshots(settings),
            staged=lambda: staged_files(url),
            report=report,
            **delay,
        )
        out.append(upkeep)
    if settings.retention_every_hours > 0:
        out.append(RetentionSchedule(settings, lake, **delay))
    return out


class BackgroundJobs:
    """The server's side: starts the child, relays its events, restarts it if it dies, and stops it
    (the transports flush what they staged; the job in progress finishes its table or rule).

    ``transports_status`` (for ``/healthz``): starting, running, degraded (``transport_errors``
    names the connectors with a problem, and what: not started, failing rounds, broker lost; also
    on ``/metrics`` as ``sciti_transport_problem``), failed, restarting or stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        first_delay: float | None = None,
        restart_seconds: float = RESTART_SECONDS,
        watch_seconds: float = WATCH_SECONDS,
    ):
        self.settings, self.first_delay, self.restart_seconds = settings, first_delay, restart_seconds
        self.watch_seconds = watch_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.transports_status = "starting"
        self.transport_errors: dict[str, str] = {}

    @property
    def pid(self) -> int | None:
        proc = self._process
        return proc.pid if proc is not None else None

    def start(self) -> None:
        with self._lock:
            if self._process is not None:
                return
            self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="sciti-background-watch", daemon=True)
        self._watcher.start()

    def stop(self, timeout: float = 120.0) -> None:
        with self._lock:
            self._stopping.set()
            proc = self._process
        if proc is not None:
            child.stop(proc, timeout=timeout, what="background jobs process", log=log)
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        self.transports_status = "stopped"

    def _spawn(self) -> subprocess.Popen[bytes]:
        payload = (self.settings, self.first_delay, self.watch_seconds)
        return child.spawn(MODULE, payload, events=self._event, log=log)

    def _event(self, event: dict[str, Any]) -> None:
        if "transports" in event:
            errors = event.get("errors", {})
            for connector in set(self.transport_errors) | set(errors):
                PROBLEMS.labels(connector=connector).set(1 if connector in errors else 0)
                if errors.get(connector) != self.transport_errors.get(connector):
                    if connector in errors:
                        log.warning("transport problem: %s: %s", connector, errors[connector])
                    else:
                        log.info("transport recovered: %s", connector)
            self.transports_status, self.transport_errors = event["transports"], errors
        else:
            count(event)

    def _watch(self) -> None:
        proc = self._process
        while proc is not None:
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error(
                "the background jobs process ended (exit code %s); starting it again in %g s",
                code,
                self.restart_seconds,
            )
            RESTARTS.inc()
            self.transports_status = "restarting"
            if self._stopping.wait(self.restart_seconds):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = proc = self._spawn()


def start_background_jobs(settings: Settings) -> BackgroundJobs:
    """Start the child; the server stops it. It runs whatever the settings and connectors ask for
    (nothing at all if both schedules are 0 and no connector has a transport)."""
    background = BackgroundJobs(settings)
    background.start()
    return background


def start_transports(settings: Settings) -> Transports | None:
    """In the child: start every connector's transport and tell the server how that went."""
    try:
        running = start_all(settings)
    except Exception as exc:  # the API stays up for queries and fixes; the log says why
        log.error("acquisition transports failed to start: %s", exc, exc_info=exc)
        child.send({"transports": "failed"})
        return None
    child.send(transports_event(running.errors))
    return running


def transports_event(problems: dict[str, str]) -> dict[str, Any]:
    return {"transports": "degraded" if problems else "running", "errors": problems}


def watch_transports(transports: Transports | None, stopped: threading.Event, every: float) -> None:
    """In the child, until the server closes our stdin: tell the server whenever the transports'
    problems change (a source down, a broker unreachable, and when they recover)."""
    last = transports.errors if transports is not None else None
    while not stopped.wait(every):
        if transports is None:
            continue
        problems = transports.problems()
        if problems != last:
            child.send(transports_event(problems))
            last = problems


def main() -> int:
    """The child: run the transports and jobs until the server closes our stdin, then stop them
    (each finishes its current step)."""
    (settings, first_delay, watch_seconds), stopped = child.receive(niceness=NICENESS)
    setup_logging(settings)
    transports = start_transports(settings)
    running = jobs(settings, report=child.send, first_delay=first_delay)
    for job in running:
        job.start()
    watch_transports(transports, stopped, watch_seconds)
    for job in running:
        job.halt.set()
    if transports is not None:
        transports.stop()  # MQTT flushes what it acknowledged
    for job in running:
        job.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
