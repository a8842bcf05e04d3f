"""The engine as a server runs it: assessor + durable store + background flusher, built on first use."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from starlette.concurrency import run_in_threadpool

from sciti.risk.engine import scoring_parts
from sciti.risk.engine.assessment import Assessment
from sciti.risk.engine.assessor import Assessor
from sciti.risk.engine.flusher import Flusher, FlusherProcess
from sciti.risk.engine.store import AssessmentStore
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine")
INLINE_RECORDS = 4  # at about 1.5 ms a record, more would hold up the other requests


class RiskService:
    def __init__(
        self, settings: Settings, assessor: Assessor, *, flusher: Flusher | FlusherProcess | None = None
    ):
        self.settings = settings
        self.assessor = assessor
        self.store = AssessmentStore(settings, assessor.policy)
        self.flusher = flusher or Flusher(settings)
        self.flusher.start()

    @classmethod
    def start(cls, settings: Settings) -> RiskService:
        return cls(settings, Assessor.load(settings), flusher=FlusherProcess(settings))

    def assess(self, kind: str, records: list[dict[str, Any]]) -> list[Assessment]:
        """Assess and commit to the durable buffer (and queue); answers only what is stored."""
        assessments = self.assessor.assess(kind, records)
        self.store.save(assessments)
        return assessments

    async def assess_async(self, kind: str, records: list[dict[str, Any]]) -> list[Assessment]:
        """``assess`` for the event loop. A few records are scored in place (a thread hop would
        cost more than the scoring); a large batch goes to a worker thread so other requests
        keep being answered meanwhile."""
        if self.assessor.refresh_due:  # a database read: not on the event loop
            await run_in_threadpool(self.assessor.refresh_rules)
            if isinstance(self.flusher, FlusherProcess):
                self.flusher.check()
        # The check above is the only one: a check falling due just now waits for the next request.
        if len(records) <= INLINE_RECORDS:
            assessments = self.assessor.assess(kind, records, refresh=False)
        else:
            assessments = await run_in_threadpool(lambda: self.assessor.assess(kind, records, refresh=False))
        await self.store.save_async(assessments)
        return assessments

    def status(self) -> dict[str, Any]:
        """What serves now. Called off the event loop (a plain route): a check that fell due runs
        first, so a promoted model or a newly built reference shows without waiting for a record."""
        self.assessor.refresh_rules()
        return {
            "rules_version": self.assessor.rules_version,
            "reference_snapshot": self.assessor.reference_snapshot,
            "kinds": {
                kind: {
                    "rules": len(p.rules),
                    "model_version": p.model_version,
                    "model_alert": p.model_error,
                }
                for kind, p in sorted(self.assessor.parts.items())
            },
            "buffer_pending": self.flusher.pending(),
            # queued by an interrupted scoring run, not yet in the lake: the flusher commits them
            "scoring_parts_pending": scoring_parts.pending(self.settings.resolved_ops_db_url),
        }

    def stop(self) -> None:
        self.store.close()
        self.flusher.stop()
        # The server is going away: hand what ``service_for`` froze back to the collector, so the
        # interpreter frees it at exit (DuckDB's bindings report anything left over as "leaked").
        gc.unfreeze()


_lock = threading.Lock()


def service_for(holder: Any, settings: Settings) -> RiskService:
    """The service kept on ``holder`` (the app's state), started on first use."""
    svc = getattr(holder, "risk_service", None)
    if svc is None:
        with _lock:
            svc = getattr(holder, "risk_service", None)
            if svc is None:
                svc = RiskService.start(settings)
                holder.risk_service = svc
                # Rules, models and reference tables live as long as the server: move them out of
                # the collector's sight, so a full collection does not walk them in the middle of
                # a real-time answer (tens of milliseconds otherwise).
                gc.collect()
                gc.freeze()
    return svc


__all__ = ["RiskService", "service_for"]
