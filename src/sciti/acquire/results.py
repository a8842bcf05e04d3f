"""What ingesting one unit gives back: the batch's outcome and its counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from sciti.acquire.claims import holder
from sciti.ops import Batch


@dataclass
class BatchResult:
    """Outcome of one batch. Counts reconcile: received = stored + quarantined + already_stored
    (rows or units whose records were all stored before, with the same values: counted, not stored
    again and not quarantined; decision 0105)."""

    batch_id: str
    connector: str
    status: str  # committed | duplicate | failed | busy (another process is ingesting it: try later)
    received: int = 0
    stored: int = 0
    quarantined: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    unit: str = ""
    error: str | None = None
    already_stored: int = 0
    replaced: int = 0  # of the stored, rows that replaced a stored record (on_change: replace, 0112)
    parts: dict[str, int] = field(default_factory=dict)  # part -> records received (committed now)


def busy_result(connector: str, batch: Batch, unit: str) -> BatchResult:
    """The answer for a unit another live process holds: nothing was done, try again later."""
    until = batch.claimed_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    when = f", claimed until {until:%Y-%m-%d %H:%M:%S} UTC unless renewed" if until else ""
    message = (
        f"{unit} is being ingested by another process ({holder(batch.claimed_by)}, batch {batch.id}"
        f"{when}); nothing was done here: try again later"
    )
    return BatchResult(batch.id, connector, "busy", unit=unit, error=message)
