"""A batch's rows and rejects: a pure function of the stored bytes and the batch.

Each part of the unit (a file, a zip member) is read by its reader (``parts.read_part``): a
table-style part is mapped in DuckDB and writes Parquet files into the tables' data folders (not
yet committed), a record-style part gives Arrow tables. Records another batch already stored, or an
earlier row or unit of this batch holds, are checked here too (decisions 0100 and 0105): a row or
unit whose records are all stored with the same values is counted as already stored, one with
other values is quarantined. Before that check, a connector with ``version_from_history`` has its
additional messages numbered from the declaration's stored versions (``versions``, decision 0114).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sciti.acquire import versions
from sciti.acquire.connector import Connector
from sciti.acquire.errors import AcquireError, ConnectorError, MissingColumn
from sciti.acquire.formats.tabular import quote_ident, sql_str
from sciti.acquire.items import Parsed, Rejected
from sciti.acquire.mapping import DICTIONARY_LIMIT, Mapped, Target, map_staged
from sciti.acquire.parts import TablePart, read_part
from sciti.acquire.records import map_records
from sciti.acquire.stored_keys import StoredIds, check_units, parquet_files, with_own
from sciti.acquire.units import expand
from sciti.acquire.validation import codelists
from sciti.model import get_kind
from sciti.settings import Settings

MERGE_AT = 16  # a table's small files written by a batch's parts, merged into one from this many on
SMALL_FILE = 4 << 20  # ... small: under this; a larger file is never rewritten

# What a batch's records are checked against: kind -> its table's rows of other batches (None: no
# check), and batch id -> the unit it received (as a quarantine reason names it).
Stored = Callable[[str], StoredIds | None]
UnitOf = Callable[[str], str]


def derive(
    settings: Settings,
    connector: Connector,
    obj: Path,
    unit: str,
    batch_id: str,
    started: datetime,
    work: Path,
    target: Callable[[str], Target],
    stored: Stored,
    unit_of: UnitOf,
    *,
    every_member: bool = False,
) -> Mapped:
    """The rows and rejects of the unit kept at ``obj``; ``target`` says where a kind's Parquet
    files go. Every part counts: a part that cannot be read is one reject. ``every_member``: the
    unit is a bundle of re-submitted entries (``units.expand``)."""
    total = Mapped()
    raws: dict[str, str | None] = {}  # record-style units' text, for those found already stored
    lists = codelists(str(Path(settings.codelists_dir).resolve()))
    # What other batches stored is read once per kind: it cannot change while the batch holds its
    # source (decision 0119). A table-style part also meets the rows the earlier parts wrote.
    others: dict[str, StoredIds | None] = {}

    def stored_once(kind: str) -> StoredIds | None:
        if kind not in others:
            others[kind] = stored(kind)
        return others[kind]

    def stored_before(kind: str) -> StoredIds | None:
        return with_own(stored_once(kind), get_kind(kind).ident, batch_id, total.files.get(kind, ()))

    n_parts = 0
    for n, part in enumerate(expand(obj, unit, connector.files, work, every_member=every_member)):
        n_parts = n + 1
        if isinstance(part, Rejected):
            mapped = Mapped(received=1, rejects=[part])
            total.parts[part.locator] = 1
        else:
            path, name = part
            try:
                mapped = map_part(
                    settings, connector, path, name, batch_id, started, work / f"part-{n}", lists, target,
                    raws, stored_before, unit_of,
                )  # fmt: skip
            except MissingColumn as exc:  # say which file of the unit (a zip has several)
                raise MissingColumn(f"{name}: {exc.message}", remedy=exc.remedy) from None
            except ConnectorError:
                raise
            except AcquireError as exc:
                mapped = Mapped(received=1, rejects=[Rejected(locator=name, reason=exc.message)])
            total.parts[name] = mapped.received
        total.received += mapped.received
        total.stored += mapped.stored
        total.already_stored += mapped.already_stored
        total.changes.rows += mapped.changes.rows
        for kind, ids in mapped.changes.ids.items():
            total.changes.ids.setdefault(kind, {}).update(ids)
        total.rejects += mapped.rejects
        for kind, files in mapped.files.items():
            total.files.setdefault(kind, []).extend(files)
            if n:  # never one part's own (per-thread) files
                total.files[kind] = merge_small(total.files[kind], target(kind), batch_id, MERGE_AT)
        for kind, count in mapped.written.items():
            total.written[kind] = total.written.get(kind, 0) + count
        for kind, table in mapped.tables.items():
            total.tables[kind] = (
                pa.concat_tables([total.tables[kind], table]) if kind in total.tables else table
            )
    if n_parts > 1:  # the table gets one file for the batch, not one per part
        for kind, files in total.files.items():
            total.files[kind] = merge_small(files, target(kind), batch_id, 2)
    if total.tables and versions.wanted(connector):  # before the check: it compares the final keys
        digests = versions.Digests(settings, connector, work)
        versions.number_from_history(total, raws, stored_once(versions.PARENT), digests, batch_id)
    if total.tables:
        drop_stored(total, raws, stored_once, unit_of)
    return total


def merge_small(files: list[str], goal: Target, batch_id: str, at_least: int) -> list[str]:
    """The Parquet files a batch's parts wrote for one table, the small ones merged into one when
    there are ``at_least`` of them (a bundle of 200 one-line entries, a zip of many small members):
    later parts then meet the batch's rows in a few files, not hundreds, and the table gets few
    files for the batch. Large files are left as they are: rewriting them costs more than it saves,
    and a merged file that grew large is not rewritten again."""
    small = [f for f in files if Path(f).stat().st_size < SMALL_FILE]
    if len(small) < at_least:
        return files
    return [f for f in files if f not in small] + [_merge(small, goal, batch_id)]


def _merge(files: list[str], goal: Target, batch_id: str) -> str:
    """One Parquet file with the rows of ``files`` (removed), with the table's field ids."""
    folder = goal.folder / f"{batch_id}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    merged = folder / f"{batch_id}-merged.parquet"
    con = duckdb.connect(":memory:")
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet_files(files)}").fetchall()]
        ids = ", ".join(f"{quote_ident(c)}: {goal.field_ids[c]}" for c in names)
        con.execute(
            f"COPY (SELECT * FROM {parquet_files(files)}) TO {sql_str(str(merged))} (FORMAT parquet, "
            f"COMPRESSION snappy, PARQUET_VERSION V2, DICTIONARY_SIZE_LIMIT {DICTIONARY_LIMIT}, "
            f"FIELD_IDS {{{ids}}})"
        )
    finally:
        con.close()
    for f in files:
        Path(f).unlink(missing_ok=True)
        if Path(f).parent != folder and not any(Path(f).parent.iterdir()):
            Path(f).parent.rmdir()  # one folder per write: empty now
    return str(merged)


def map_part(
    settings: Settings,
    connector: Connector,
    path: Path,
    unit: str,
    batch_id: str,
    started: datetime,
    work: Path,
    lists: Any,
    target: Callable[[str], Target],
    raws: dict[str, str | None],
    stored: Stored,
    unit_of: UnitOf,
) -> Mapped:
    """One part through its reader and mapping (table-style parts are checked against the stored
    records here; record-style ones by ``drop_stored`` once every part is read)."""
    with read_part(settings, connector, path, unit, work) as part:
        if isinstance(part, TablePart):
            return map_staged(
                part.con,
                connector,
                part.staged,
                batch_id=batch_id,
                ingested_at=started,
                lists=lists,
                target=target,
                stored=stored,
                unit_of=unit_of,
            )
        return map_records(
            _kept(part.items, raws),
            source=connector.source,
            batch_id=batch_id,
            ingested_at=started,
            lists=lists,
        )


def drop_stored(mapped: Mapped, raws: dict[str, str | None], stored: Stored, unit_of: UnitOf) -> None:
    """Take out the record-style units whose records are already stored: counted as already
    stored when all are with the same values, quarantined otherwise (``check_units``); their rows
    (children included) are not stored."""
    con = duckdb.connect(":memory:")
    try:
        rejected, already = check_units(con, mapped.tables, stored, unit_of)
    finally:
        con.close()
    if not rejected and not already:
        return
    gone = pa.array([*rejected, *already], pa.string())
    for kind, table in mapped.tables.items():
        mapped.tables[kind] = table.filter(pc.invert(pc.is_in(table.column("locator"), gone)))
    for locator, why in rejected.items():
        mapped.rejects.append(Rejected(locator=locator, reason=why, raw=raws.get(locator)))
    mapped.stored -= len(rejected) + len(already)
    mapped.already_stored += len(already)


def _kept(items: Any, raws: dict[str, str | None]) -> Iterator[Any]:
    """Pass the units on, keeping each one's text by locator (for a quarantine entry made later)."""
    for item in items:
        if isinstance(item, Parsed):
            raws[item.locator] = item.raw
        yield item
