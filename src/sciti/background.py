"""The server's background jobs, lake upkeep and personal-data retention, in a process of their own.

Both run every few hours and then do heavy Python work for seconds to minutes: reading manifests,
rewriting Parquet, committing. On a thread of the API process they held the interpreter lock all
that time, and every real-time answer waited behind them (bench/upkeep_latency.py: during an upkeep
pass the assessment p99 rose from about 25 ms to several hundred). So ``sciti serve`` runs them in
a child process (sciti.child) at a background priority: ``python -m sciti.background``.

The child sends what upkeep did as JSON lines on its stdout, and the server puts them on its own
``/metrics``, where operators already look. If the child dies, the server starts it again after
``restart_seconds`` (the jobs begin again from their first delay) and counts it
(``sciti_background_restarts_total``). Decision 0079.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from prometheus_client import Counter

from sciti import child
from sciti.access.privacy import RetentionSchedule
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
RESTART_SECONDS = 30.0
MODULE = "sciti.background"


def wanted(settings: Settings) -> bool:
    """True when the settings schedule any job (0 hours for both: a site's own cron does them)."""
    return settings.lake_upkeep_every_hours > 0 or settings.retention_every_hours > 0


def jobs(
    settings: Settings, *, report: child.Report = count, first_delay: float | None = None
) -> list[Periodic]:
    """The jobs the settings schedule, not started yet. Upkeep keeps the snapshots registered models
    were trained on and the files of scoring parts awaiting the lake."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    delay = {} if first_delay is None else {"first_delay": first_delay}
    out: list[Periodic] = []
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
    """The server's side: starts the child, relays its events to ``/metrics``, restarts it if it
    dies, and stops it (the job in progress finishes its table or rule first)."""

    def __init__(
        self,
        settings: Settings,
        *,
        first_delay: float | None = None,
        restart_seconds: float = RESTART_SECONDS,
    ):
        self.settings, self.first_delay, self.restart_seconds = settings, first_delay, restart_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

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

    def _spawn(self) -> subprocess.Popen[bytes]:
        return child.spawn(MODULE, (self.settings, self.first_delay), events=count, log=log)

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
            if self._stopping.wait(self.restart_seconds):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = proc = self._spawn()


def start_background_jobs(settings: Settings) -> BackgroundJobs | None:
    """Start the child when the settings schedule any job (None otherwise); the server stops it."""
    if not wanted(settings):
        return None
    background = BackgroundJobs(settings)
    background.start()
    return background


def main() -> int:
    """The child: run the jobs until the server closes our stdin, then let the running one finish."""
    (settings, first_delay), stopped = child.receive()
    setup_logging(settings)
    running = jobs(settings, report=child.send, first_delay=first_delay)
    for job in running:
        job.start()
    stopped.wait()
    for job in running:
        job.halt.set()
    for job in running:
        job.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
