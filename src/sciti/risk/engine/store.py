"""Keeping assessments: the durable buffer (ops outbox), the officers' queue and red-lane capacity.

``AssessmentStore.save`` returns only when the assessments are committed to the operational
database, so an answer is never sent for an assessment that could be lost. Requests arriving
together are committed together by one writer thread (group commit): one transaction and one
disk flush for many answers, which keeps real-time latency flat under concurrency.

The same transaction hands out red-lane places (capacity per office and day) and puts flagged
records on the queue, superseding a record's older open item (see ``enqueue``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from concurrent.futures import Future
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, insert, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from sciti.ops.risk_tables import RiskCapacityUse, RiskOutbox
from sciti.risk.engine.assessment import Assessment
from sciti.risk.engine.enqueue import committed, enqueue
from sciti.risk.engine.errors import StoreUnavailable
from sciti.risk.engine.metrics import BUFFER_PENDING, BUFFER_RECEIVED
from sciti.risk.engine.reasons import as_list, english, red_capacity, said_text
from sciti.risk.lanes import LanePolicy
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine.store")
NO_OFFICE = "-"  # capacity key for records that name no office


def take_red_place(
    session: Session, policy: LanePolicy, office: str | None, day: date
) -> tuple[bool, int | None]:
    """Take one red-lane place at ``office`` on ``day``: (granted, capacity)."""
    cap = policy.capacity(office)
    if cap is None:
        return True, None
    key = office or NO_OFFICE
    for _ in range(3):  # a concurrent first insert of the same counter is retried once or twice
        res = session.execute(
            update(RiskCapacityUse)
            .where(RiskCapacityUse.office_code == key, RiskCapacityUse.day == day, RiskCapacityUse.used < cap)
            .values(used=RiskCapacityUse.used + 1)
        )
        if res.rowcount:  # type: ignore[attr-defined]
            return True, cap
        if session.get(RiskCapacityUse, (key, day)) is not None:
            return False, cap
        if cap < 1:
            return False, cap
        try:
            with session.begin_nested():
                session.add(RiskCapacityUse(office_code=key, day=day, used=1))
            return True, cap
        except IntegrityError:
            continue
    return False, cap


def apply_capacity(session: Session, policy: LanePolicy, a: Assessment) -> None:
    """Red from risk (not from the sample) needs a place; without one, the next-best lane, said why."""
    if a.lane != "red" or a.sampled:
        return
    day = a.assessed_at.date()
    granted, cap = take_red_place(session, policy, a.office_code, day)
    if granted:
        return
    over = policy.for_kind(a.kind).over_capacity
    a.lane = over
    said = red_capacity(a.office_code, day, cap, over)
    if len(a.reason_codes) == len(a.reasons):  # line for line (an assessment without codes stays so)
        a.reason_codes.append(said)
    a.reasons.append(english(said))


def queue_row(a: Assessment) -> dict[str, Any]:
    return {
        "assessment_id": a.assessment_id,
        "kind": a.kind,
        "record_id": a.record_id,
        "subject_ref": a.subject_ref,
        "office_code": a.office_code,
        "score": a.score,
        "lane": a.lane,
        "assigned_lane": a.lane,
        "sampled": a.sampled,
        "reasons": a.reasons,
        # Only line for line with the reasons (an assessment without codes has none to keep).
        "reason_codes": as_list([said_text(c) for c in a.reason_codes])
        if len(a.reason_codes) == len(a.reasons)
        else None,
        "rule_ids": a.rule_ids,
        "model_version": a.model_version,
        "assessed_at": a.assessed_at,
        "status": "open",
    }


def outbox_row(a: Assessment) -> dict[str, Any]:
    return {"assessment_id": a.assessment_id, "payload": json.dumps(a.to_row(), default=str)}


# Built once: Core statements made per call cost more than the database's own work (every
# real-time group commit comes through here).
_OUTBOX_INSERT = insert(cast(Table, RiskOutbox.__table__))


def write(session: Session, policy: LanePolicy, assessments: list[Assessment]) -> None:
    """Capacity, outbox and queue for these assessments, in the session's transaction."""
    for a in assessments:
        apply_capacity(session, policy, a)
    session.connection().execute(_OUTBOX_INSERT, [outbox_row(a) for a in assessments])
    assessed = [(a.kind, a.record_id, a.assessment_id) for a in assessments]
    enqueue(session, assessed, [queue_row(a) for a in assessments if a.flagged])


class AssessmentStore:
    """Group-commit writer of assessments (one thread; ``save`` waits for the commit)."""

    def __init__(
        self, settings: Settings, policy: LanePolicy, *, max_group: int = 512, timeout: float = 30.0
    ):
        self.url = settings.resolved_ops_db_url
        self.policy = policy
        self.max_group = max_group
        self.timeout = timeout
        self._queue: queue.Queue[tuple[list[Assessment], Future[None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="risk-store", daemon=True)
        self._thread.start()

    def submit(self, assessments: list[Assessment]) -> Future[None]:
        """Hand assessments to the writer; the future completes when they are durable."""
        done: Future[None] = Future()
        if not assessments:
            done.set_result(None)
        else:
            self._queue.put((assessments, done))
        return done

    def save(self, assessments: list[Assessment]) -> None:
        """Commit (capacity, outbox, queue); returns when durable. Lanes may change (capacity)."""
        try:
            self.submit(assessments).result(timeout=self.timeout)
        except TimeoutError:
            raise self.unavailable(assessments) from None

    async def save_async(self, assessments: list[Assessment]) -> None:
        """``save`` for the event loop: waits for the commit without holding a thread."""
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.submit(assessments)), self.timeout)
        except TimeoutError:
            raise self.unavailable(assessments) from None

    def unavailable(self, assessments: list[Assessment]) -> StoreUnavailable:
        return StoreUnavailable(
            f"the operational database did not take {len(assessments)} assessment(s) in {self.timeout:.0f} s"
        )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            rows = len(first[0])
            stop = False
            while rows < self.max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                rows += len(nxt[0])
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[list[Assessment], Future[None]]]) -> None:
        assessments = [a for items, _ in group for a in items]
        try:
            committed(self.url, lambda session: write(session, self.policy, assessments))
        except Exception as exc:
            if len(group) > 1 and isinstance(exc, DataError | IntegrityError):
                # The database refused values, maybe one request's: each request on its own, so the
                # others are still stored and only that one answers with the failure. (Not for an
                # outage: trying each request again would only keep the writer from new ones.)
                for one in group:
                    self._commit([one])
                return
            log.error("assessments could not be stored: %s", exc, exc_info=exc)
            for _, fut in group:  # each waiting request answers with the failure, none is lost silently
                fut.set_exception(StoreUnavailable(f"assessments could not be stored: {exc}"))
            return
        n = sum(len(items) for items, _ in group)
        BUFFER_RECEIVED.inc(n)
        BUFFER_PENDING.inc(n)
        for _, fut in group:
            fut.set_result(None)


__all__ = ["AssessmentStore", "apply_capacity", "take_red_place", "write"]
