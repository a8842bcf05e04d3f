"""Table metadata entries shared between metadata versions instead of deep-copied (decision 0123).

pyiceberg builds every new table metadata with ``model_copy(deep=True)``, twice a commit (staging
the change, then again in the catalog's commit). A table's metadata lists every snapshot kept
with its summary, and the snapshot and metadata logs, so between upkeep passes each commit copies
a few hundred snapshots entry by entry: a third of a small batch's time after 300 commits.

These entries are frozen pydantic models holding only numbers, strings and, for a snapshot, its
summary, which pyiceberg fills while it builds the snapshot and never changes once the snapshot
is in a table's metadata. A copy of one is the same value, so a deep copy may hand out the entry
itself, as deep copies do for strings and numbers. Everything else in the metadata (schemas,
properties, refs) is still copied as pyiceberg chose.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.table.snapshots import MetadataLogEntry, Snapshot, SnapshotLogEntry

SHARED = (Snapshot, SnapshotLogEntry, MetadataLogEntry)


def _itself(self: Any, memo: dict[int, Any] | None = None) -> Any:
    return self


def share_entries() -> None:
    """Make deep copies of the entries in ``SHARED`` return the entry (idempotent)."""
    for cls in SHARED:
        cls.__deepcopy__ = _itself  # type: ignore[method-assign,assignment]


share_entries()
