"""A record is stored once: the records a batch brings whose key is already stored.

A record's id is derived from its kind's key and source (``make_record_id``), so "already stored"
means: the target table holds a row with the same ``record_id`` from ANOTHER batch (rows of the
batch itself are its own, found again when a crashed batch is recovered), or an earlier row or unit
of the same batch holds it and is stored (in an earlier part too: a zip's member, a bundle's entry,
whose files are ``StoredIds.own``, decision 0120). Such a record is not stored again. Its source row or unit
is judged whole (``Verdict``, docs/decisions/0100 and 0105):

* every record stored with the same values: counted as ``already stored`` in the batch's counts,
  neither stored again nor quarantined (a re-sent file leaves nothing to discard);
* a record stored with different values: quarantined, ``declaration 62759212 version 1 is already
  stored from batch … (unit) with different values (fields: …); send it as a new version (an
  amendment) or discard this entry`` (``appears twice in this batch with different values`` for a
  copy within the batch);
* some records stored with the same values, others new: quarantined, as a row or unit is not split.

The lookup is one columnar read of the table's ``record_id`` and ``batch_id`` per batch: DuckDB
over the current snapshot's Parquet files (``StoredIds.view``), or pyiceberg's scan of those two
columns when the files carry deletes or live in an object store. The ids of small files are kept in
memory by path once read (decision 0121). Values are read only for the few records found, to name
the fields that differ.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cachetools import LRUCache
from pyiceberg.expressions import In
from pyiceberg.table import Table

from sciti.acquire.formats.tabular import quote_ident, sql_str
from sciti.lake import Lake
from sciti.lake.files import local_path, snapshot_files
from sciti.model import PARENT_COLUMN, PROVENANCE_NAMES, RecordKind, get_kind

# Columns that say where a row came from, not what it says: left out when comparing values.
NOT_VALUES = frozenset((*PROVENANCE_NAMES, PARENT_COLUMN[0]))


@dataclass(frozen=True)
class StoredIds:
    """The rows of one lake table stored by other batches than ``batch_id``, as the check reads
    them: the local Parquet files of the current snapshot (``paths``), or the table itself when
    those files carry deletes or are not local (read through pyiceberg). ``own``: files the
    batch's earlier parts wrote (a zip's members, a bundle's entries), not committed yet: their
    rows are the batch's own, and a later part meets them as an earlier row of the batch."""

    ident: str
    batch_id: str
    paths: tuple[str, ...]
    table: Table | None = None
    own: tuple[str, ...] = ()
    small: frozenset[str] = frozenset()  # of ``paths``, the small files: their ids kept in memory

    def view(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Create ``name(record_id, batch_id)``: the other batches' record ids (and those of the
        batch's earlier parts), read lazily (a semi-join against it reads only those columns).

        The ids of small files come from memory (``_small_file_ids``): a table fed in small batches
        holds one small file per batch until upkeep compacts it, and DuckDB opening each of them
        for every batch's check made each batch slower than the one before (decision 0121)."""
        parts = [f"SELECT record_id, batch_id FROM {parquet_files(self.own)}"] if self.own else []
        if self.table is None and self.paths:
            other = f"batch_id IS DISTINCT FROM {sql_str(self.batch_id)}"
            ids = {p: _small_file_ids(p) for p in self.paths if p in self.small}
            kept = [t for t in ids.values() if t is not None]
            large = [p for p in self.paths if ids.get(p) is None]
            if large:
                parts.append(f"SELECT record_id, batch_id FROM {parquet_files(large)} WHERE {other}")
            if kept:
                con.register(f"{name}_small", pa.concat_tables(kept, promote_options="permissive"))
                parts.append(f"SELECT record_id, batch_id FROM {name}_small WHERE {other}")
        elif self.table is not None:
            ids = self.table.scan(selected_fields=("record_id", "batch_id")).to_arrow()
            ids = ids.filter(pc.invert(pc.fill_null(pc.equal(ids["batch_id"], self.batch_id), False)))
            con.register(f"{name}_arrow", ids)
            parts.append(f"SELECT record_id, batch_id FROM {name}_arrow")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS {' UNION ALL '.join(parts)}")

    def register(self, con: duckdb.DuckDBPyConnection, name: str, ids: Sequence[str]) -> list[str]:
        """Make table ``name`` hold the rows other batches stored under ``ids``, every column, one
        per record id (the first stored when a table already holds several); returns its columns
        (a column no stored file holds is not there: it reads as null)."""
        first = "QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY ingested_at) = 1"
        con.register("__wanted", pa.table({"record_id": pa.array(list(ids), pa.string())}))
        wanted = "record_id IN (SELECT record_id FROM __wanted)"
        if self.table is None:
            # Another batch's copy before one of this batch's earlier parts (it was received first).
            parts = [f"SELECT * FROM {parquet_files(self.own)} WHERE {wanted}"] if self.own else []
            if self.paths:
                parts.append(
                    f"SELECT * FROM {parquet_files(self.paths)} WHERE {wanted} "
                    f"AND batch_id IS DISTINCT FROM {sql_str(self.batch_id)}"
                )
            rows = " UNION ALL BY NAME ".join(f"({q})" for q in parts)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS SELECT * FROM ({rows}) {first}")
        else:
            found = self.table.scan(row_filter=In(term="record_id", literals=set(ids))).to_arrow()
            found = found.filter(pc.invert(pc.fill_null(pc.equal(found["batch_id"], self.batch_id), False)))
            con.register("__found_arrow", found)
            rows = "SELECT * FROM __found_arrow"
            if self.own:
                rows = f"({rows}) UNION ALL BY NAME (SELECT * FROM {parquet_files(self.own)} WHERE {wanted})"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} AS SELECT * FROM ({rows}) {first}")
            con.unregister("__found_arrow")
        con.unregister("__wanted")
        return [r[0] for r in con.execute(f"DESCRIBE {quote_ident(name)}").fetchall()]

    def rows(self, con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored rows (every column) of the given record ids, by record id (the first stored
        when a table already holds several)."""
        if not ids:
            return {}
        self.register(con, "__found", ids)
        found = con.sql("SELECT * FROM __found").to_arrow_table()
        con.execute("DROP TABLE __found")
        return {row["record_id"]: row for row in found.to_pylist()}


def parquet_files(paths: Sequence[str]) -> str:
    """A relation over Parquet files, their columns matched by name."""
    return f"read_parquet([{', '.join(sql_str(p) for p in paths)}], union_by_name = true)"


def with_own(found: StoredIds | None, ident: str, batch_id: str, own: Sequence[str]) -> StoredIds | None:
    """``found`` (what other batches stored) and the files the batch's earlier parts wrote."""
    if not own:
        return found
    if found is None:
        return StoredIds(ident, batch_id, (), own=tuple(own))
    return dataclasses.replace(found, own=tuple(own))


def stored_ids(lake: Lake, ident: str, batch_id: str) -> StoredIds | None:
    """What ``ident`` holds, to check a batch's records against; None when it holds nothing yet
    (a new table, or one the batch creates), so the check costs nothing there."""
    if not lake.exists(ident):
        return None
    table = lake.table(ident)
    files = snapshot_files(table, table.current_snapshot())
    if not files.tasks:
        return None
    paths = [local_path(p) for p in files.paths]
    if files.has_deletes or any(p is None for p in paths):
        return StoredIds(ident, batch_id, (), table)
    small = frozenset(
        p for p, t in zip(paths, files.tasks, strict=True) if p and t.file.record_count <= SMALL_FILE_ROWS
    )
    return StoredIds(ident, batch_id, tuple(p for p in paths if p), small=small)


# The record and batch ids of small data files, by path. A data file is never changed once
# written (a compaction or an upsert writes new ones), so what was read stays right. At most so
# many ids in all (about 100 bytes each), least recently used dropped first.
SMALL_FILE_ROWS = 10_000
_ids: LRUCache[str, pa.Table] = LRUCache(maxsize=300_000, getsizeof=lambda t: t.num_rows)
_ids_lock = threading.Lock()  # cachetools' caches are not thread-safe


def _small_file_ids(path: str) -> pa.Table | None:
    """``record_id`` and ``batch_id`` of one small data file (None: it does not hold both as
    text, e.g. a file from before a column existed: DuckDB reads it then)."""
    with _ids_lock:
        found = _ids.get(path)
    if found is not None:
        return found
    try:
        found = pq.read_table(path, columns=["record_id", "batch_id"])
    except (pa.ArrowInvalid, KeyError):
        return None
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in found.schema.types):
        return None
    if found.num_rows <= SMALL_FILE_ROWS:
        with _ids_lock:
            _ids[path] = found
    return found


def key_words(kind: RecordKind, row: dict[str, Any]) -> str:
    """A record named by its key as a person reads it: ``declaration 62759212 version 1``."""
    parts = [kind.name.replace("_", " ")]
    for n, k in enumerate(kind.key):
        value = row.get(k)
        if n == 0:
            parts.append(str(value))
        else:
            label = (
                "version" if k.endswith("version") else "item" if k == "item_number" else k.replace("_", " ")
            )
            parts.append(f"{label} {value}")
    return " ".join(parts)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def differing(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """The value fields whose values differ between a new row and the stored one: every field the
    new row carries (a field the source does not map is not there), a field the stored row lacks
    being null."""
    return [f for f in new if f not in NOT_VALUES and not _same(new[f], old.get(f))]


@dataclass
class Conflict:
    """One record of the batch whose key is already stored: by another batch (``old`` is the stored
    row), or by an earlier row or unit of this batch (``earlier``: ``old`` is that copy)."""

    kind: RecordKind
    new: dict[str, Any]
    old: dict[str, Any]
    fields: list[str]  # the value fields that differ (empty: identical)
    earlier: bool = False

    @property
    def identical(self) -> bool:
        return not self.fields


@dataclass
class Verdict:
    """What one source row or unit's records are, against what is stored and what the batch
    stores before it. A row or unit is stored, counted or quarantined whole (decision 0105)."""

    conflicts: list[Conflict] = field(default_factory=list)
    inside: list[tuple[RecordKind, dict[str, Any]]] = field(default_factory=list)  # twice in itself
    # Records stored nowhere yet, with their values read only if a reason names them.
    fresh: list[tuple[RecordKind, Callable[[], dict[str, Any]]]] = field(default_factory=list)

    def outcome(
        self, unit_of: Callable[[str], str], received: datetime | None = None
    ) -> tuple[str, str | None]:
        """``("store", None)``, ``("already", None)`` (every record is stored with these values:
        nothing to store, nothing to quarantine) or ``("quarantine", reason)``.

        ``received``: when the batch was received, for a connector whose records replace the stored
        ones (``on_change: replace``, decision 0112): a row another batch stored with other values
        is then ``("replace", None)``, or ``("already", None)`` when a batch received later stored it
        (the stored version is the newer one)."""
        stored = [c for c in self.conflicts if not c.earlier]
        earlier = [c for c in self.conflicts if c.earlier]
        if received is not None and stored and not self.inside and all(c.identical for c in earlier):
            if any(_received(c.old) > received for c in stored):
                return "already", None
            if self.fresh or any(not c.identical for c in stored):
                return "replace", None
        if any(not c.identical for c in stored):
            return "quarantine", reason(stored, unit_of)
        if self.inside:
            kind, row = self.inside[0]
            return "quarantine", twice_reason(kind, row, None)
        if any(not c.identical for c in earlier):
            c = next(c for c in earlier if not c.identical)
            return "quarantine", twice_reason(c.kind, c.new, c.old.get("locator"))
        if not self.conflicts:
            return "store", None
        if self.fresh:
            return "quarantine", partly_reason(self.conflicts, self.fresh, unit_of)
        return "already", None


def _received(row: dict[str, Any]) -> datetime:
    """When the batch that stored ``row`` was received (its ``ingested_at``), comparable with an aware
    datetime."""
    at = row.get("ingested_at")
    if not isinstance(at, datetime):
        return datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass
class Changes:
    """The rows of a batch that replace stored records (``on_change: replace``, decision 0112): how
    many, and per kind the record ids replaced with the batch that had stored each one (the
    children written with it are replaced too)."""

    rows: int = 0
    ids: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, conflicts: Sequence[Conflict]) -> None:
        self.rows += 1
        for c in conflicts:
            if not c.earlier:
                self.ids.setdefault(c.kind.name, {})[c.new["record_id"]] = c.old.get("batch_id") or ""


def _where(conflict: Conflict, unit_of: Callable[[str], str]) -> str:
    if conflict.earlier:
        return f"{conflict.old.get('locator') or '?'} of this batch"
    batch = conflict.old.get("batch_id") or "?"
    unit = unit_of(batch)
    return f"batch {batch}" + (f" ({unit})" if unit else "")


def _remedy(kind: RecordKind) -> str:
    return (
        "send it as a new version (an amendment) or discard this entry"
        if any(k.endswith("version") for k in kind.key)
        else "correct the stored record at its source or discard this entry"
    )


def reason(conflicts: Sequence[Conflict], unit_of: Callable[[str], str]) -> str:
    """The quarantine reason for a source row or unit holding records another batch stored with
    other values (the first record names it; the others of the same row or unit are listed)."""
    first = conflicts[0]
    name = key_words(first.kind, first.new)
    others = [key_words(c.kind, c.new) for c in conflicts[1:]]
    also = f"; so are {', '.join(others)}" if others else ""
    fields = sorted({f for c in conflicts for f in c.fields})
    return (
        f"{name} is already stored from {_where(first, unit_of)} with different values "
        f"(fields: {', '.join(fields)}){also}; {_remedy(first.kind)}"
    )


def _names(shown: list[str], total: int) -> str:
    """Records named in a reason: the first few, then how many more."""
    return ", ".join(shown) + (f" and {total - len(shown)} more" if total > len(shown) else "")


def partly_reason(
    conflicts: Sequence[Conflict],
    fresh: Sequence[tuple[RecordKind, Callable[[], dict[str, Any]]]],
    unit_of: Callable[[str], str],
) -> str:
    """The reason for a row or unit some of whose records are already stored with the same values
    while others are not: it is not split, so none of it is stored (decision 0105)."""
    first = conflicts[0]
    known = _names([key_words(c.kind, c.new) for c in conflicts[:3]], len(conflicts))
    new = _names([key_words(kind, row()) for kind, row in fresh[:3]], len(fresh))
    what = (
        "if it adds to what is stored, send all of it as a new version (an amendment), else discard "
        "this entry"
        if any(k.endswith("version") for k in first.kind.key)
        else "if it adds to what is stored, correct the stored record at its source, else discard this entry"
    )
    return (
        f"{known} {'is' if len(conflicts) == 1 else 'are'} already stored with the same values (from "
        f"{_where(first, unit_of)}), but {new} {'is' if len(fresh) == 1 else 'are'} not; a row or unit "
        f"is stored whole, so nothing of it was stored: {what}"
    )


def twice_reason(kind: RecordKind, row: dict[str, Any], first_locator: str | None) -> str:
    """The reason for a record a batch holds twice with different values: the first copy is stored,
    this one is not (``first_locator`` None: the unit itself holds it twice, so none of it is
    stored)."""
    if first_locator is None:
        return f"{key_words(kind, row)} appears twice in this unit; correct the unit and send it again"
    return (
        f"{key_words(kind, row)} appears twice in this batch with different values: the copy at "
        f"{first_locator} is stored; if this one is a correction, send it as a new version (an "
        "amendment), else discard this entry"
    )


def stored_rows(
    con: duckdb.DuckDBPyConnection, found: StoredIds | None, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows another batch stored under ``ids`` (by record id): one semi-join of the ids
    against the table's stored ids, then every column of the few found."""
    if found is None or not ids:
        return {}
    found.view(con, "__stored")
    con.register("__ids", pa.table({"record_id": pa.array(list(ids), pa.string())}))
    hits = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT record_id FROM __stored WHERE record_id IN (SELECT record_id FROM __ids)"
        ).fetchall()
    ]
    con.unregister("__ids")
    return found.rows(con, sorted(hits))


def check_units(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pa.Table],
    stored: Callable[[str], StoredIds | None],
    unit_of: Callable[[str], str],
) -> tuple[dict[str, str], set[str]]:
    """Record-style units (a message, a JSON line) holding records already stored, by another
    batch or an earlier unit of this batch that is stored: (locator -> reason for those
    quarantined, locators of those counted as already stored). A unit is judged whole
    (``Verdict``), so its children (items, parties) go with it."""
    order = sorted((k for k in tables if tables[k].num_rows), key=lambda k: 1 if get_kind(k).parent else 0)
    units: dict[str, list[tuple[str, int, str]]] = {}  # locator -> (kind, position, record id)
    olds: dict[str, dict[str, dict[str, Any]]] = {}
    values: dict[str, dict[int, dict[str, Any]]] = {}  # kind -> position -> row, where needed
    for kind_name in order:
        table = tables[kind_name]
        ids = table.column("record_id").to_pylist()
        for n, (rid, locator) in enumerate(zip(ids, table.column("locator").to_pylist(), strict=True)):
            units.setdefault(locator, []).append((kind_name, n, rid))
        olds[kind_name] = stored_rows(con, stored(kind_name), ids)
        counts = collections.Counter(ids)
        wanted = [n for n, rid in enumerate(ids) if rid in olds[kind_name] or counts[rid] > 1]
        rows = table.take(pa.array(wanted, pa.int64())).to_pylist() if wanted else []
        values[kind_name] = dict(zip(wanted, rows, strict=True))

    def row_of(kind_name: str, n: int) -> dict[str, Any]:
        if n not in values[kind_name]:
            values[kind_name][n] = tables[kind_name].slice(n, 1).to_pylist()[0]
        return values[kind_name][n]

    rejected: dict[str, str] = {}
    already: set[str] = set()
    kept: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, record id) -> the stored copy's row
    for locator, records in units.items():
        verdict, here, mine = Verdict(), set(), []
        for kind_name, n, rid in records:
            kind = get_kind(kind_name)
            if (kind_name, rid) in here:
                verdict.inside.append((kind, row_of(kind_name, n)))
                continue
            here.add((kind_name, rid))
            old = olds[kind_name].get(rid)
            first = kept.get((kind_name, rid))
            if old is not None or first is not None:
                row = row_of(kind_name, n)
                base = old if old is not None else first
                assert base is not None
                verdict.conflicts.append(Conflict(kind, row, base, differing(row, base), old is None))
            else:
                verdict.fresh.append((kind, functools.partial(row_of, kind_name, n)))
                mine.append((kind_name, n, rid))
        outcome, why = verdict.outcome(unit_of)
        if outcome == "store":
            for kind_name, n, rid in mine:
                if n in values[kind_name]:  # held again later in the batch: keep this copy to compare
                    kept[(kind_name, rid)] = values[kind_name][n]
        elif outcome == "already":
            already.add(locator)
        else:
            rejected[locator] = why or ""
    return rejected, already
