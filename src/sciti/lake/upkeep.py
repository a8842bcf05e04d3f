"""Lake upkeep on a schedule: compaction, snapshot expiry and removal of the files nothing uses
any more (sciti.lake.reclaim), table by table.

Real-time feeds commit every few seconds, and every snapshot kept makes the next commit of that
table slower; files written by ingest are unsorted until compacted. ``sciti lake maintain`` does the
work by hand; a server runs it by itself every ``lake_upkeep_every_hours`` (in its background jobs
process, sciti.background) so nobody has to remember a cron entry (0 turns it off, for a site that
prefers its own scheduler).

One failed table never stops the others or the schedule: it is logged, counted on ``/metrics``
and tried again at the next pass. A pass tells what it did as small events (sciti.child.Report);
:func:`count` puts them on the metrics of the process that serves ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from sciti.child import Report
from sciti.lake.catalog import KEEP_ALL_HOURS, KEEP_DAYS, KEEP_LAST, Lake, MaintainResult
from sciti.lake.reclaim import ORPHAN_DAYS
from sciti.periodic import Periodic

log = logging.getLogger("sciti.lake.upkeep")

PASSES = Counter("sciti_lake_upkeep_passes", "Scheduled lake upkeep passes run by this server.")
FAILURES = Counter(
    "sciti_lake_upkeep_failures", "Tables whose scheduled upkeep failed (tried again next pass).", ["table"]
)
SNAPSHOTS = Gauge("sciti_lake_snapshots", "Snapshots a table keeps after the last upkeep pass.", ["table"])
LAST_PASS = Gauge("sciti_lake_upkeep_last_pass_seconds", "Unix time the last upkeep pass ended.")
FREED = Counter(
    "sciti_lake_upkeep_freed_bytes",
    "Bytes of lake files upkeep removed: files only expired snapshots used, and old orphans.",
    ["table"],
)

# Snapshot ids per table that upkeep must keep (e.g. what registered models were trained on).
Protected = Callable[[], Mapping[str, Collection[int]]]
# Files written to be committed later (e.g. scoring parts awaiting the lake): never orphans.
Staged = Callable[[], Collection[str]]


def count(event: dict[str, Any]) -> None:
    """Show an upkeep event on this process's metrics."""
    if "failed" in event:
        FAILURES.labels(table=event["failed"]).inc()
    elif "table" in event:
        SNAPSHOTS.labels(table=event["table"]).set(event["snapshots_left"])
        FREED.labels(table=event["table"]).inc(event["bytes_freed"])
    elif "pass_ended" in event:
        PASSES.inc()
        LAST_PASS.set(event["pass_ended"])


@dataclass(frozen=True)
class UpkeepPolicy:
    """What a pass keeps: as ``sciti lake maintain``'s options of the same names."""

    keep_days: float = KEEP_DAYS
    keep_last: int = KEEP_LAST
    keep_all_hours: float = KEEP_ALL_HOURS
    target_file_rows: int = 1_000_000
    orphan_days: float = ORPHAN_DAYS


def upkeep_pass(
    lake: Lake,
    policy: UpkeepPolicy,
    protected: Protected | None = None,
    halt: threading.Event | None = None,
    staged: Staged | None = None,
    report: Report = count,
) -> tuple[list[MaintainResult], list[str]]:
    """Maintain every table once: (results, tables that failed). ``halt`` set: stop between tables."""
    try:
        keep = protected() if protected else {}
        waiting = staged() if staged else ()  # read before any table's files are listed
    except Exception as exc:  # without the lists, upkeep could drop what someone relies on
        log.error(
            "lake upkeep skipped: protected snapshots or staged files unknown", extra={"error": str(exc)}
        )
        raise
    results: list[MaintainResult] = []
    failed: list[str] = []
    for info in lake.list_tables():
        if halt is not None and halt.is_set():
            break
        try:
            result = lake.maintain(
                info.ident,
                keep_days=policy.keep_days,
                keep_last=policy.keep_last,
                keep_all_hours=policy.keep_all_hours,
                target_file_rows=policy.target_file_rows,
                protected=keep.get(info.ident, ()),
                orphan_days=policy.orphan_days,
                staged=waiting,
            )
        except Exception as exc:  # one bad table (whatever the cause) does not stop the others
            log.error("lake upkeep failed", extra={"table": info.ident, "error": str(exc)})
            report({"failed": info.ident})
            failed.append(info.ident)
            continue
        freed = result.removed + result.orphans
        report({"table": info.ident, "snapshots_left": result.snapshots_left, "bytes_freed": freed.bytes})
        if result.expired or freed.files or result.compact.files_before != result.compact.files_after:
            log.info(
                "lake table maintained",
                extra={
                    "table": info.ident,
                    "files_before": result.compact.files_before,
                    "files_after": result.compact.files_after,
                    "snapshots_expired": result.expired,
                    "snapshots_left": result.snapshots_left,
                    "files_removed": result.removed.files,
                    "orphans_removed": result.orphans.files,
                    "bytes_freed": freed.bytes,
                },
            )
        results.append(result)
    report({"pass_ended": time.time()})
    return results, failed


class LakeUpkeep(Periodic):
    """Runs :func:`upkeep_pass` every ``every_hours`` (the first pass ``first_delay`` s after start).

    ``stop`` waits for the table being maintained now (never stops in the middle of a commit)."""

    def __init__(
        self,
        lake: Lake,
        every_hours: float,
        policy: UpkeepPolicy | None = None,
        *,
        protected: Protected | None = None,
        staged: Staged | None = None,
        report: Report = count,
        first_delay: float = 300.0,
    ):
        super().__init__("sciti-lake-upkeep", first_delay=first_delay, what="lake upkeep pass", log=log)
        self.lake, self.every_hours = lake, every_hours
        self.policy = policy or UpkeepPolicy()
        self.protected, self.staged, self.report = protected, staged, report

    @property
    def passes(self) -> int:
        return self.runs

    def job(self) -> None:
        upkeep_pass(self.lake, self.policy, self.protected, self.halt, self.staged, self.report)

    def period(self) -> float:
        return self.every_hours * 3600


__all__ = ["LakeUpkeep", "UpkeepPolicy", "count", "upkeep_pass"]
