"""Declaration versions numbered from the stored history (docs/decisions/0114).

A reader maps one message at a time and cannot know what came before it: the WCO DEC reader gives
an amendment version 2 and a cancellation version 3 (decision 0006). A connector with the option
``version_from_history: true`` has these provisional numbers replaced here, once per batch and
before the stored-key check (decisions 0100, 0105). An additional message (a ``declaration`` whose
version is above 1) then gets:

* the version of the same message when it is already stored, or held earlier in the batch: same
  mapped values and the same message digest (``DIGESTS``, read back from the raw zone); the
  stored-key check then counts it as already stored;
* otherwise 1 + the highest version stored for its declaration id (from the same source, by other
  batches) or given earlier in this batch, in the order the batch's files and messages came;
* nothing, when the declaration is cancelled (a stored or earlier version with function code 13):
  the message is quarantined, as a cancellation is final.

The lake is read once per batch (the stored versions of the declaration ids the batch's additional
messages name); a stored message is read back only when its values equal a new one's.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import In

from sciti.acquire import blobs
from sciti.acquire.connector import Connector
from sciti.acquire.errors import ConnectorError
from sciti.acquire.formats.tabular import sql_str
from sciti.acquire.items import Rejected
from sciti.acquire.mapping import Mapped
from sciti.acquire.stored_keys import StoredIds, differing, parquet_files
from sciti.acquire.units import BUNDLE, expand
from sciti.model import PARENT_COLUMN, get_kind, make_record_id
from sciti.ops import Batch, session_scope
from sciti.settings import Settings

OPTION = "version_from_history"
PARENT = "declaration"
CANCELLATION = "13"  # canonical function code (UN/EDIFACT 1225) of a cancellation
# Per format, the function giving (unit bytes, part name) -> {locator: digest of each message},
# locators as its reader gives them; imported on first use, as the readers are (registry.py).
DIGESTS = {"wco-xml": ("sciti.acquire.formats.wco_xml", "declaration_digests")}


def wanted(connector: Connector) -> bool:
    """Whether the connector numbers additional messages from history (a clear error when its
    format has no message digest to recognise a message sent again)."""
    if not connector.options.get(OPTION):
        return False
    if connector.format not in DIGESTS:
        raise ConnectorError(
            f"connector {connector.name}: option {OPTION} is for message formats that carry "
            f"amendments ({', '.join(sorted(DIGESTS))}), not {connector.format}",
            remedy=f"remove {OPTION} from the connector's options",
        )
    return True


class Digests:
    """The message digests of received units, read back from the object store once per batch."""

    def __init__(self, settings: Settings, connector: Connector, work: Path):
        self.settings, self.connector, self.work = settings, connector, work / "history"
        self._by_batch: dict[str, dict[str, str]] = {}

    def of(self, batch_id: str, locator: str) -> str | None:
        """The digest of the message at ``locator`` in the unit batch ``batch_id`` received; None
        when the unit is no longer kept (retention) or cannot be read."""
        if batch_id not in self._by_batch:
            self._by_batch[batch_id] = self._read(batch_id)
        return self._by_batch[batch_id].get(locator)

    def _read(self, batch_id: str) -> dict[str, str]:
        with session_scope(self.settings.resolved_ops_db_url) as s:
            batch = s.get(Batch, batch_id)
            key, unit = (batch.object_key, batch.unit) if batch is not None else (None, "")
            bundle = batch is not None and batch.transport == BUNDLE
        obj = blobs.object_path(self.settings, key) if key else None
        if obj is None or not obj.is_file():
            return {}
        work = self.work / f"{len(self._by_batch)}"
        work.mkdir(parents=True, exist_ok=True)
        module, name = DIGESTS[self.connector.format]
        digest = getattr(importlib.import_module(module), name)
        found: dict[str, str] = {}
        for part in expand(obj, unit, self.connector.files, work, every_member=bundle):
            if not isinstance(part, Rejected):
                found.update(digest(part[0].read_bytes(), part[1]))
        return found


def stored_versions(found: StoredIds | None, source: str, ids: list[str]) -> list[dict[str, Any]]:
    """Every declaration row other batches of ``source`` stored under ``ids``: one read."""
    if found is None or not ids:
        return []
    con = duckdb.connect(":memory:")
    try:
        con.register("__ids", pa.table({"declaration_id": pa.array(ids, pa.string())}))
        where = (
            f"source = {sql_str(source)} AND declaration_id IN (SELECT declaration_id FROM __ids) "
            f"AND batch_id IS DISTINCT FROM {sql_str(found.batch_id)}"
        )
        if found.table is None:
            query = f"SELECT * FROM {parquet_files(found.paths)} WHERE {where}"
        else:  # files with deletes, or not local: pyiceberg reads them, DuckDB gives the same types
            rows = found.table.scan(row_filter=In(term="declaration_id", literals=set(ids))).to_arrow()
            con.register("__rows", rows)
            query = f"SELECT * FROM __rows WHERE {where}"
        return con.sql(query).to_arrow_table().to_pylist()
    finally:
        con.close()


def number_from_history(
    mapped: Mapped,
    raws: dict[str, str | None],
    found: StoredIds | None,
    digests: Digests,
    batch_id: str,
) -> None:
    """Give each additional message of the batch its version, or quarantine it (see above)."""
    table = mapped.tables.get(PARENT)
    if table is None:
        return
    extra = pc.indices_nonzero(pc.fill_null(pc.greater(table.column("version"), 1), False))
    if not len(extra):
        return  # no additional message: nothing to look up
    heads = table.take(extra).to_pylist()
    seen: dict[str, list[dict[str, Any]]] = {}
    ids = sorted({h["declaration_id"] for h in heads})
    for row in sorted(stored_versions(found, heads[0]["source"], ids), key=lambda r: r["version"]):
        seen.setdefault(row["declaration_id"], []).append(row)

    def same_message(new: dict[str, Any], old: dict[str, Any]) -> bool:
        if old["version"] <= 1 or [f for f in differing(new, old) if f != "version"]:
            return False
        mine = digests.of(batch_id, new["locator"])
        return mine is not None and mine == digests.of(old["batch_id"], old["locator"])

    versions: dict[str, int] = {}  # locator -> version given
    refused: dict[str, str] = {}
    for head in heads:
        history = seen.setdefault(head["declaration_id"], [])
        same = next((old for old in history if same_message(head, old)), None)
        if same is not None:
            versions[head["locator"]] = same["version"]
            continue
        cancel = next((o for o in history if o["version"] > 1 and o["function_code"] == CANCELLATION), None)
        if cancel is not None:
            refused[head["locator"]] = cancelled_reason(head, cancel)
            continue
        version = max((old["version"] for old in history), default=1) + 1
        versions[head["locator"]] = version
        history.append({**head, "version": version})
    _renumber(mapped, versions)
    _refuse(mapped, refused, raws)


def cancelled_reason(new: dict[str, Any], cancel: dict[str, Any]) -> str:
    """Why a message about a cancelled declaration is not stored."""
    issued, received = cancel.get("issue_datetime"), cancel.get("ingested_at")
    when = (
        f"issued {_utc(issued)}" if issued else f"received {_utc(received)}" if received else "date unknown"
    )
    what = "another cancellation" if new["function_code"] == CANCELLATION else "an amendment"
    return (
        f"declaration {new['declaration_id']} was cancelled (version {cancel['version']}, {when}); "
        f"{what} after a cancellation is not accepted: if the declaration goes ahead, it is lodged "
        "again as a new declaration; discard this entry"
    )


def _utc(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _renumber(mapped: Mapped, versions: dict[str, int]) -> None:
    """Set the given versions on the messages' declarations and their children, with the record
    ids (and children's parent ids) that follow from the new keys; row order is kept."""
    parents: dict[str, str] = {}  # locator -> the declaration's new record id
    kinds = sorted(mapped.tables, key=lambda k: 0 if k == PARENT else 1)
    for kind_name in kinds:
        kind = get_kind(kind_name)
        column = "version" if kind_name == PARENT else "declaration_version"
        if kind_name != PARENT and kind.parent != PARENT:
            continue
        table = mapped.tables[kind_name]
        locators = table.column("locator").to_pylist()
        hits = [n for n, loc in enumerate(locators) if loc in versions]
        if not hits:
            continue
        ids = table.column("record_id").to_pylist()
        numbers = table.column(column).to_pylist()
        links = table.column(PARENT_COLUMN[0]).to_pylist() if kind_name != PARENT else None
        for n, row in zip(hits, table.take(pa.array(hits, pa.int64())).to_pylist(), strict=True):
            numbers[n] = row[column] = versions[row["locator"]]
            ids[n] = make_record_id(kind.name, row["source"], *(row.get(k) for k in kind.key))
            if links is None:
                parents.setdefault(row["locator"], ids[n])
            else:
                links[n] = parents.get(row["locator"], links[n])
        table = _set(table, column, numbers)
        table = _set(table, "record_id", ids)
        if links is not None:
            table = _set(table, PARENT_COLUMN[0], links)
        mapped.tables[kind_name] = table


def _set(table: pa.Table, name: str, values: list[Any]) -> pa.Table:
    at = table.schema.get_field_index(name)
    return table.set_column(at, table.schema.field(at), pa.array(values, table.schema.field(at).type))


def _refuse(mapped: Mapped, refused: dict[str, str], raws: dict[str, str | None]) -> None:
    """Quarantine whole messages (their children go with them)."""
    if not refused:
        return
    gone = pa.array(list(refused), pa.string())
    for kind_name, table in mapped.tables.items():
        mapped.tables[kind_name] = table.filter(pc.invert(pc.is_in(table.column("locator"), gone)))
    for locator, why in refused.items():
        mapped.rejects.append(
            Rejected(locator=locator, reason=why, field="function_code", raw=raws.get(locator))
        )
    mapped.stored -= len(refused)
