"""Moves buffered assessments from the ops outbox into the lake table ``risk.assessments``.

Exactly once, whatever crashes: (1) claim up to ``max_rows`` rows by stamping a new batch id;
(2) append them to the lake in one commit carrying that batch id; (3) delete them. A claim older
than ``stale_seconds`` that is still there after a crash is settled by asking the lake whether
its batch landed (then only step 3) or not (steps 2 and 3 again). A slow or failing lake only
makes the outbox grow; it never loses or blocks an assessment.

Each pass also finishes the batch scoring parts whose lake commit was interrupted
(``scoring_parts.finish``): queued and counted, their staged files not yet in the lake.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from sciti import child
from sciti.lake import Lake, open_lake
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskOutbox
from sciti.risk.engine import scoring_parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE, rows_to_table
from sciti.risk.engine.metrics import FLUSH_FAILURES, count
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine.flusher")


def _row(payload: str) -> dict[str, Any]:
    row = json.loads(payload)
    row["assessed_at"] = datetime.fromisoformat(row["assessed_at"])
    return row


def pending(url: str, report: child.Report = count) -> int:
    """Assessments in the outbox, not yet in the lake (also reported, for ``/metrics``)."""
    with session_scope(url) as session:
        n = session.scalar(select(func.count()).select_from(RiskOutbox)) or 0
    report({"pending": n})
    return n


class Flusher:
    def __init__(
        self,
        settings: Settings,
        *,
        lake: Lake | None = None,
        max_rows: int | None = None,
        max_seconds: float | None = None,
        stale_seconds: float = 120.0,
        report: child.Report = count,
    ):
        """``report``: where the counts of each pass go (this process's metrics, or the server's)."""
        self.url = settings.resolved_ops_db_url
        self.report = report
        self.lake = lake or open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
        self.max_rows = max_rows or settings.buffer_max_rows
        self.max_seconds = settings.buffer_max_seconds if max_seconds is None else max_seconds
        self.stale_seconds = stale_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()

    # -- counts ----------------------------------------------------------------------------------
    def pending(self) -> int:
        return pending(self.url, self.report)

    # -- one pass --------------------------------------------------------------------------------
    def flush(self) -> int:
        """Settle stale claims, then move everything pending; returns how many rows reached the lake."""
        with self._flush_lock:
            self.lake.ensure_table(ASSESSMENTS_TABLE, ASSESSMENTS_SCHEMA)
            moved = self._recover()
            # Batch scoring parts whose lake commit was interrupted (queued, not in the lake yet).
            moved += scoring_parts.finish(self.url, self.lake, stale_seconds=self.stale_seconds)
            # Only full batches call for another round at once. Rows that arrive while a batch is
            # written wait for the next pass: taking them now would make one lake commit per handful
            # of rows, back to back, under steady real-time traffic (each commit costs the same
            # whatever its size, and every commit adds a snapshot the next one has to copy).
            while True:
                batch, claimed = self._claim()
                if batch is None:
                    break
                moved += self._move(batch)
                if claimed < self.max_rows:
                    break
            self.pending()
            return moved

    def _claim(self) -> tuple[str | None, int]:
        batch = f"risk-{uuid.uuid4().hex[:24]}"
        with session_scope(self.url) as session:
            ids = session.scalars(
                select(RiskOutbox.id)
                .where(RiskOutbox.flush_batch.is_(None))
                .order_by(RiskOutbox.id)
                .limit(self.max_rows)
            ).all()
            if not ids:
                return None, 0
            session.execute(
                update(RiskOutbox)
                .where(RiskOutbox.id.in_(ids), RiskOutbox.flush_batch.is_(None))
                .values(flush_batch=batch, claimed_at=datetime.now(UTC))
            )
        return batch, len(ids)

    def _move(self, batch: str) -> int:
        with session_scope(self.url) as session:
            payloads = session.scalars(
                select(RiskOutbox.payload).where(RiskOutbox.flush_batch == batch)
            ).all()
        if payloads:
            self.lake.append(ASSESSMENTS_TABLE, rows_to_table([_row(p) for p in payloads]), batch_id=batch)
        with session_scope(self.url) as session:
            session.execute(delete(RiskOutbox).where(RiskOutbox.flush_batch == batch))
        self.report({"flushed": len(payloads)})
        return len(payloads)

    def _recover(self) -> int:
        """Finish claims left by a crash (or a failed lake write) once they are ``stale_seconds`` old."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.stale_seconds)
        with session_scope(self.url) as session:
            stale = session.scalars(
                select(RiskOutbox.flush_batch)
                .where(RiskOutbox.flush_batch.is_not(None), RiskOutbox.claimed_at < cutoff)
                .distinct()
            ).all()
        moved = 0
        for batch in stale:
            assert batch is not None
            if self.lake.has_batch(ASSESSMENTS_TABLE, batch):
                with session_scope(self.url) as session:
                    session.execute(delete(RiskOutbox).where(RiskOutbox.flush_batch == batch))
            else:
                moved += self._move(batch)
        return moved

    # -- background ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="risk-flusher", daemon=True)
            self._thread.start()

    def stop(self, *, final_flush: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if final_flush:
            self.flush_logged()

    def _loop(self) -> None:
        while not self._stop.wait(self.max_seconds):
            self.flush_logged()

    def flush_logged(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # the rows stay in the outbox; the next pass retries them
            self.report({"flush_failed": 1})
            log.error("flushing assessments to the lake failed (will retry): %s", exc, exc_info=exc)


class FlusherProcess:
    """The flusher in its own process (``python -m sciti.risk.engine.flush_worker``), as the server runs it.

    Writing Parquet and committing to the catalogue is heavy Python work; on a thread of the
    server it holds the interpreter lock for long stretches and every real-time answer waits
    behind it. In a child process (:mod:`sciti.child`) it uses the other core instead. Same outbox,
    same exactly-once protocol: a crash of either process loses nothing. Closing the child's stdin
    tells it to make a last pass and stop, so it also stops when the server dies (decision 0061).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None

    def pending(self) -> int:
        return pending(self.settings.resolved_ops_db_url)

    def start(self) -> None:
        if self._process is None:
            self._process = child.spawn(
                "sciti.risk.engine.flush_worker", self.settings, events=count, log=log
            )

    def check(self) -> bool:
        """Start the child again if it died (its rows wait in the outbox meanwhile); True if it had."""
        proc = self._process
        if proc is None or proc.poll() is None:
            return False
        log.error("the assessment flusher process ended (exit code %s); starting it again", proc.returncode)
        FLUSH_FAILURES.inc()
        self._process = None
        self.start()
        return True

    def stop(self, *, final_flush: bool = True) -> None:
        """Stop the child after its last pass (it always makes one: ``final_flush`` is implied)."""
        proc, self._process = self._process, None
        if proc is not None:  # the rows of an unfinished pass stay in the outbox for the next start
            child.stop(proc, timeout=120, what="assessment flusher", log=log)


__all__ = ["Flusher", "FlusherProcess"]
