"""A record is stored once: the records a batch brings whose key another batch already stored.

A record's id is derived from its kind's key and source (``make_record_id``), so "already stored"
means: the target table holds a row with the same ``record_id`` from ANOTHER batch (rows of the
batch itself are its own, found again when a crashed batch is recovered). Such a record is not
stored again; its source row or unit is quarantined with a reason a person can act on
(docs/decisions/0100):

* identical values: ``already stored: declaration 62759212 version 1 came in batch … (unit),
  identical; nothing is missing: discard this entry``;
* different values: ``declaration 62759212 version 1 is already stored from batch … (unit) with
  different values (fields: …); send it as a new version (an amendment) or discard this entry``.

The lookup is one columnar read of the table's ``record_id`` and ``batch_id`` per batch: DuckDB
over the current snapshot's Parquet files (``StoredIds.view``), or pyiceberg's scan of those two
columns when the files carry deletes or live in an object store. Values are read only for the few
records found, to name the fields that differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
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
    those files carry deletes or are not local (read through pyiceberg)."""

    ident: str
    batch_id: str
    paths: tuple[str, ...]
    table: Table | None = None

    def view(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Create ``name(record_id, batch_id)``: the other batches' record ids, read lazily (a
        semi-join against it reads only those two columns)."""
        if self.table is None:
            files = ", ".join(sql_str(p) for p in self.paths)
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS SELECT record_id, batch_id "
                f"FROM read_parquet([{files}], union_by_name = true) "
                f"WHERE batch_id IS DISTINCT FROM {sql_str(self.batch_id)}"
            )
            return
        ids = self.table.scan(selected_fields=("record_id", "batch_id")).to_arrow()
        ids = ids.filter(pc.invert(pc.fill_null(pc.equal(ids["batch_id"], self.batch_id), False)))
        con.register(f"{name}_arrow", ids)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(name)} AS SELECT * FROM {name}_arrow")

    def rows(self, con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored rows (every column) of the given record ids, by record id (the first stored
        when a table already holds several)."""
        if not ids:
            return {}
        if self.table is None:
            con.register("__wanted", pa.table({"record_id": pa.array(list(ids), pa.string())}))
            files = ", ".join(sql_str(p) for p in self.paths)
            found = con.sql(
                f"SELECT * FROM read_parquet([{files}], union_by_name = true) "
                "WHERE record_id IN (SELECT record_id FROM __wanted) "
                f"AND batch_id IS DISTINCT FROM {sql_str(self.batch_id)} ORDER BY ingested_at"
            ).to_arrow_table()
            con.unregister("__wanted")
        else:
            found = self.table.scan(row_filter=In(term="record_id", literals=set(ids))).to_arrow()
            found = found.filter(pc.invert(pc.fill_null(pc.equal(found["batch_id"], self.batch_id), False)))
        out: dict[str, dict[str, Any]] = {}
        for row in found.to_pylist():
            out.setdefault(row["record_id"], row)
        return out


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
    return StoredIds(ident, batch_id, tuple(p for p in paths if p))


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


def differing(new: dict[str, Any], old: dict[str, Any], fields: Iterable[str]) -> list[str]:
    """The value fields whose values differ between a new row and the stored one (a field the new
    row does not carry is not compared: the source does not map it)."""
    return [f for f in fields if f not in NOT_VALUES and f in new and not _same(new[f], old.get(f))]


@dataclass
class Conflict:
    """One record of the batch whose key is already stored by another batch."""

    kind: RecordKind
    new: dict[str, Any]
    old: dict[str, Any]
    fields: list[str]  # the value fields that differ (empty: identical)

    @property
    def identical(self) -> bool:
        return not self.fields


def reason(conflicts: Sequence[Conflict], unit_of: Callable[[str], str]) -> str:
    """The quarantine reason for a source row or unit whose records are already stored (the first
    record names it; the others of the same row or unit are listed)."""
    first = conflicts[0]
    batch = first.old.get("batch_id") or "?"
    unit = unit_of(batch)
    where = f"batch {batch}" + (f" ({unit})" if unit else "")
    name = key_words(first.kind, first.new)
    others = [key_words(c.kind, c.new) for c in conflicts[1:]]
    also = f"; so are {', '.join(others)}" if others else ""
    if all(c.identical for c in conflicts):
        return (
            f"already stored: {name} came in {where}, identical{also}; nothing is missing: discard this entry"
        )
    fields = sorted({f for c in conflicts for f in c.fields})
    what = (
        "send it as a new version (an amendment) or discard this entry"
        if any(k.endswith("version") for k in first.kind.key)
        else "correct the stored record at its source or discard this entry"
    )
    return (
        f"{name} is already stored from {where} with different values (fields: {', '.join(fields)})"
        f"{also}; {what}"
    )


def twice_reason(kind: RecordKind, row: dict[str, Any], first_locator: str | None) -> str:
    """The reason for a record a batch holds twice: the first copy is stored, this one is not
    (``first_locator`` None: the unit itself holds it twice, so none of it is stored)."""
    if first_locator is None:
        return f"{key_words(kind, row)} appears twice in this unit; correct the unit and send it again"
    return (
        f"{key_words(kind, row)} appears twice in this batch: the copy at {first_locator} is stored; "
        "if this one is a correction, send it as a new version (an amendment), else discard this entry"
    )


def check_units(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, pa.Table],
    stored: Callable[[str], StoredIds | None],
    unit_of: Callable[[str], str],
) -> dict[str, str]:
    """Record-style units (a message, a JSON line) whose records another batch already stored, or
    an earlier unit of the batch holds: locator -> reason. Parents are looked at first; a unit is
    rejected whole, so its children (items, parties) go with it."""
    conflicts: dict[str, list[Conflict]] = {}
    twice: dict[str, str] = {}
    order = sorted(tables, key=lambda k: 1 if get_kind(k).parent else 0)
    for kind_name in order:
        table = tables[kind_name]
        if not table.num_rows:
            continue
        kind = get_kind(kind_name)
        ids = table.column("record_id").to_pylist()
        locators = table.column("locator").to_pylist()
        first: dict[str, str] = {}
        for n, (rid, locator) in enumerate(zip(ids, locators, strict=True)):
            if rid not in first:
                first[rid] = locator
                continue
            row = table.slice(n, 1).to_pylist()[0]
            seen = first[rid]
            twice.setdefault(locator, twice_reason(kind, row, None if seen == locator else seen))
        found = stored(kind_name)
        if found is None:
            continue
        found.view(con, "__stored")
        con.register("__ids", pa.table({"record_id": pa.array(ids, pa.string())}))
        hits = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT record_id FROM __stored WHERE record_id IN (SELECT record_id FROM __ids)"
            ).fetchall()
        ]
        con.unregister("__ids")
        if not hits:
            continue
        olds = found.rows(con, sorted(hits))
        mask = pc.is_in(table.column("record_id"), pa.array(list(olds), pa.string()))
        for row in table.filter(mask).to_pylist():
            old = olds[row["record_id"]]
            conflicts.setdefault(row["locator"], []).append(
                Conflict(kind, row, old, differing(row, old, old))
            )
    out = {locator: reason(found_conflicts, unit_of) for locator, found_conflicts in conflicts.items()}
    for locator, why in twice.items():
        out.setdefault(locator, why)
    return out
