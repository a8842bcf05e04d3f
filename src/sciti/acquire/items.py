"""What a format reader hands to the runner.

Record-style readers (XML, EDIFACT, JSON messages) yield one ``Parsed`` per source unit (a
declaration message, an EDIFACT message, a JSON line) holding canonical records by kind, or one
``Rejected`` naming where it was and why it cannot be stored. Table-style readers (CSV, Parquet,
SQL) yield Arrow record batches instead and report rejected rows as ``Rejected``.

Counts reconcile per batch: every unit received is either stored or rejected, never both, never
neither.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class Parsed:
    """One source unit mapped to canonical records.

    ``records`` maps a record kind name (``declaration``, ``declaration_item`` ...) to a list of
    field dicts using the kind's field names. Child records (those whose kind has a ``parent``) are
    linked to the first record of the parent kind in the same unit by the runner. ``raw`` keeps the
    unit as received (text) for quarantine if a later check rejects it.
    """

    locator: str
    records: dict[str, list[dict[str, Any]]]
    raw: str | None = None


@dataclass
class Rejected:
    """A unit or row that cannot be stored: quarantined with where, what and why."""

    locator: str
    reason: str
    field: str | None = None
    raw: str | None = None
    # dataclasses.field, spelled out: the attribute ``field`` above shadows the bare name here.
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
