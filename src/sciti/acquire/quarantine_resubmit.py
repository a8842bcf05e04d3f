"""Re-submit many quarantine entries as they were quarantined, by a selection (decision 0117).

Once the cause of a quarantine is fixed (a connector's mapping, a code list that lacked a new HS
code), hundreds or thousands of open entries must run again unchanged. Entries of one received unit that
are one record each go together as one batch (``quarantine_bundle``, decision 0120), the others
through the single ``resubmit``; either way each entry is linked to its batch, has its own audit
entry, and is closed only when its rows came in.
The run takes the bulk discard's ``Selection`` (decision 0110) as of its start: entries above the
highest open id then (among them those the run itself quarantines again) are never taken, so a run
ends even when the cause is not fixed. It walks the entries by id, never stops at one that stays
open (it collects why), and writes ONE summary audit entry for the run.

selected = resubmitted + still_open + closed_meanwhile + remaining, always.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select

from sciti.access.audit import audit
from sciti.acquire.batch_registry import _ready
from sciti.acquire.errors import AcquireError
from sciti.acquire.quarantine import resubmit
from sciti.acquire.quarantine_bulk import Selection, check_selection, refuse_missing, selection_where
from sciti.acquire.quarantine_bundle import plan, resubmit_bundle
from sciti.errors import SCITIError
from sciti.ops import QuarantineRecord, session_scope
from sciti.settings import Settings

log = logging.getLogger("sciti.acquire")

RUN_MAX = 100_000  # entries one run may take
# What one request (API, web page) takes: a hundred entries at most (one CSV line is about 0.1 s in
# a bundle, decision 0120), none started after CALL_SECONDS, so a call ends well within a minute
# and the client calls again.
CALL_MAX = 100
CALL_DEFAULT = 100
CALL_SECONDS = 20.0
CHUNK = 200  # ids read per query
SAMPLE = 5  # ids kept per reason entries stayed open
MAX_GROUPS = 20  # reasons kept apart; the rest are counted together
_BATCH_ID = re.compile(r"\b[0-9a-f]{32}\b")


@dataclass
class StillOpen:
    """Entries that stayed open for one reason: the error code, its words (the entry's id and batch
    ids left out, so one cause is one group), how many, and the first few ids."""

    code: str
    why: str
    count: int = 0
    ids: list[int] = field(default_factory=list)


@dataclass
class BulkResubmitResult:
    """What a bulk re-submission did (a dry run: ``selected``, ``taken`` and ``remaining`` only).

    ``selected``: open entries of the selection with ``after_id < id <= up_to_id`` at the start;
    ``taken``: those this call re-submitted (in a dry run: would); ``resubmitted``: closed by their
    re-submission; ``still_open``: re-submitted but left open (``reasons`` says why);
    ``closed_meanwhile``: closed by another action first; ``remaining``: not reached (the limit or
    the time budget): call again with ``after_id``/``up_to_id``. ``stored``, ``quarantined`` and
    ``already_stored`` sum the re-submissions' batches (``quarantined``: entries quarantined again,
    new open entries). selected = resubmitted + still_open + closed_meanwhile + remaining."""

    selected: int = 0
    taken: int = 0
    resubmitted: int = 0
    still_open: int = 0
    closed_meanwhile: int = 0
    remaining: int = 0
    already_closed: int = 0
    stored: int = 0
    quarantined: int = 0
    already_stored: int = 0
    reasons: list[StillOpen] = field(default_factory=list)
    after_id: int = 0
    up_to_id: int | None = None
    dry_run: bool = False
    limit: int = RUN_MAX
    seconds: float = 0.0
    audit_ref: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        names = ("selected", "taken", "resubmitted", "still_open", "closed_meanwhile", "remaining")
        more = ("already_closed", "stored", "quarantined", "already_stored")
        return {k: getattr(self, k) for k in (*names, *more)}


Progress = Callable[[int, int], None]  # (entries reached, entries this call means to reach)


def resubmit_selection(
    settings: Settings,
    sel: Selection,
    user: str,
    *,
    source: str = "internal",
    dry_run: bool = False,
    limit: int = RUN_MAX,
    after_id: int = 0,
    up_to_id: int | None = None,
    budget: float | None = None,
    progress: Progress | None = None,
) -> BulkResubmitResult:
    """Re-submit, as quarantined, the open entries ``sel`` takes (at most ``limit``; none started
    after ``budget`` seconds), as ``user`` from ``source``. ``after_id``/``up_to_id`` continue an
    earlier call (its answer gives them): ids up to ``after_id`` were reached, and ``up_to_id`` keeps
    the selection as of the first call. A dry run counts and changes nothing (nor is it audited)."""
    check_selection(sel)
    if not 1 <= limit <= RUN_MAX:
        raise AcquireError(f"the limit must be 1 to {RUN_MAX:,}", remedy="run again for the rest")
    if after_id < 0 or (up_to_id is not None and up_to_id < 1):
        raise AcquireError(
            "after_id and up_to_id are entry ids (after_id 0 or more, up_to_id 1 or more)",
            remedy="pass back the values the previous run answered, or leave them out",
        )
    if after_id and up_to_id is None:  # else entries quarantined again since would be taken
        raise AcquireError(
            "after_id continues a run and needs its up_to_id",
            remedy="pass both values the previous run answered (--after-id N --up-to-id M)",
        )
    _ready(settings)
    where = selection_where(sel)
    is_open = QuarantineRecord.status == "open"
    out = BulkResubmitResult(dry_run=dry_run, limit=limit, after_id=after_id, selection=sel.named())
    with session_scope(settings.resolved_ops_db_url) as s:
        refuse_missing(s, sel, "re-submitted")
        # The selection as of now: what this run quarantines again is newer, and never taken.
        top = up_to_id or s.scalar(select(func.max(QuarantineRecord.id)).where(*where, is_open)) or 0
        out.up_to_id = top or None
        span = (QuarantineRecord.id > after_id, QuarantineRecord.id <= top)
        out.selected = _count(s, *where, is_open, *span)
        out.already_closed = _count(s, *where, ~is_open, *span)
    if dry_run:
        out.taken = min(out.selected, limit)
        out.remaining = out.selected - out.taken
        return out
    out.audit_ref = uuid.uuid4().hex
    planned, started, last = min(out.selected, limit), time.monotonic(), after_id
    finished = out_of_time = False
    try:
        while out.taken < limit and out.selected and not out_of_time:
            with session_scope(settings.resolved_ops_db_url) as s:
                ids = s.scalars(
                    select(QuarantineRecord.id)
                    .where(*where, is_open, QuarantineRecord.id > last, QuarantineRecord.id <= top)
                    .order_by(QuarantineRecord.id)
                    .limit(min(CHUNK, limit - out.taken))
                ).all()
            if not ids:
                break
            for part in plan(settings, list(ids)):
                if budget is not None and time.monotonic() - started >= budget:
                    out_of_time = True
                    break
                if len(part) == 1:
                    _one(settings, part[0], user, source, out)
                else:
                    _bundle(settings, part, user, source, out)
                last, out.taken = part[-1], out.taken + len(part)
                if progress is not None:
                    progress(out.taken, planned)
        finished = True
    finally:  # an interrupted run (Ctrl-C, a lost database) still says what it did, if it can
        out.after_id, out.seconds = last, round(time.monotonic() - started, 3)
        _finish(settings, out, where, top, user, source, finished, after_id)
    return out


def _count(s: Any, *where: ColumnElement[bool]) -> int:
    return s.scalar(select(func.count()).select_from(QuarantineRecord).where(*where)) or 0


def _is_open(settings: Settings, qid: int) -> bool:
    with session_scope(settings.resolved_ops_db_url) as s:
        q = s.get(QuarantineRecord, qid)
        return q is not None and q.status == "open"


def _one(settings: Settings, qid: int, user: str, source: str, out: BulkResubmitResult) -> None:
    """Re-submit one entry as quarantined; whatever happens, the run goes on. An entry another
    action closed first (the single function refuses it) is not a failure: it is closed."""
    try:
        result = resubmit(settings, qid, None, user, source=source, bulk_ref=out.audit_ref)
    except SCITIError as exc:
        if _is_open(settings, qid):
            _stayed(out, qid, exc.code, exc.message)
        return
    except Exception as exc:  # a fault of one entry must not stop the thousand after it
        log.exception("bulk re-submission of quarantine entry %s failed", qid)
        if _is_open(settings, qid):
            _stayed(out, qid, "internal_error", f"{type(exc).__name__}: see the server log")
        return
    if result.status == "failed":  # the batch failed: nothing committed, the entry stays open
        if _is_open(settings, qid):
            _stayed(out, qid, "batch_failed", result.error or "the re-submitted batch failed")
        return
    out.resubmitted += 1
    out.stored += result.stored
    out.quarantined += result.quarantined
    out.already_stored += result.already_stored


def _bundle(settings: Settings, ids: list[int], user: str, source: str, out: BulkResubmitResult) -> None:
    """Re-submit entries of one original unit as one batch (decision 0120); the run goes on
    whatever happens. Entries closed by another action first are counted closed, as for one."""
    try:
        done = resubmit_bundle(settings, ids, user, source=source, bulk_ref=out.audit_ref or "")
    except Exception as exc:  # noqa: BLE001 - a fault of one bundle must not stop the rest
        log.exception("bulk re-submission of quarantine entries %s to %s failed", ids[0], ids[-1])
        code = exc.code if isinstance(exc, SCITIError) else "internal_error"
        why = exc.message if isinstance(exc, SCITIError) else f"{type(exc).__name__}: see the server log"
        for qid in ids:
            if _is_open(settings, qid):
                _stayed(out, qid, code, why)
        return
    for qid in done.alone:  # the bundle's batch failed: each alone, to say which is at fault
        _one(settings, qid, user, source, out)
    for qid, code, why in done.stayed:
        _stayed(out, qid, code, why)
    if done.closed:
        out.resubmitted += len(done.closed)
        out.stored += done.result.stored
        out.quarantined += done.result.quarantined
        out.already_stored += done.result.already_stored


def _stayed(out: BulkResubmitResult, qid: int, code: str, message: str) -> None:
    out.still_open += 1
    # The entry's own id where the text names the entry (its number elsewhere, in a line number or
    # a path, is left as it is), so entries failing alike make one group.
    why = _BATCH_ID.sub("…", re.sub(rf"(\bentry |\bshow |#resubmit-){qid}\b", r"\1ID", message))[:300]
    group = next((g for g in out.reasons if (g.code, g.why) == (code, why)), None)
    if group is None and len(out.reasons) >= MAX_GROUPS:
        code, why = "other", "other reasons (more than 20 kinds): see each entry's audit entry"
        group = next((g for g in out.reasons if g.code == "other"), None)
    if group is None:
        group = StillOpen(code, why)
        out.reasons.append(group)
    group.count += 1
    if len(group.ids) < SAMPLE:
        group.ids.append(qid)


def _finish(
    settings: Settings,
    out: BulkResubmitResult,
    where: list[ColumnElement[bool]],
    top: int,
    user: str,
    source: str,
    finished: bool,
    started_after: int,
) -> None:
    """Count what was not reached, and write the run's one audit entry: the selection, the counts,
    the reasons' codes and ids (never their words: a batch's error may quote the content)."""
    with session_scope(settings.resolved_ops_db_url) as s:
        span = (QuarantineRecord.id > out.after_id, QuarantineRecord.id <= top)
        out.remaining = _count(s, *where, QuarantineRecord.status == "open", *span)
        out.closed_meanwhile = max(out.selected - out.resubmitted - out.still_open - out.remaining, 0)
        audit(
            s,
            actor=user,
            action="quarantine.resubmit",
            target=f"quarantine:selection:{out.audit_ref}",
            source=source,
            outcome="ok" if finished else "failed",
            details={
                "bulk": True,
                "ref": out.audit_ref,
                "selection": out.selection,
                "limit": out.limit,
                "started_after_id": started_after,
                "after_id": out.after_id,
                "up_to_id": out.up_to_id,
                "seconds": out.seconds,
                **out.counts(),
                "stayed_open": [{"code": g.code, "count": g.count, "ids": g.ids} for g in out.reasons],
            },
        )
