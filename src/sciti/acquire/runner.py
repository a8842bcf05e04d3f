"""The runner: every received unit becomes one batch, stored exactly once or quarantined, never lost.

Commit protocol (docs/decisions/0009): keep the bytes in the object store; register the batch
(status ``running``) under (connector, sha256) so the same unit sent again is a no-op; derive the
rows deterministically from the stored bytes; append each lake table once, tagged with the batch
id; then, in one operational-database transaction, write the quarantine entries and mark the
batch committed. A batch found ``running`` (the process died) is recovered by deriving the same
rows again and appending only to tables whose history does not yet show the batch.

A record is stored once (docs/decisions/0100): a record whose id another batch already stored in
its table, or that an earlier row or unit of the batch holds, is quarantined with its source row or
unit (children go with their parent). Rows the batch itself stored are its own: a recovered batch
finds them and is not rejected by them.

One process at a time works on a batch (docs/decisions/0094): it takes the batch's claim with a
conditional UPDATE, renews it while it works, and commits only while it still holds it. Another
caller with the same unit is answered ``busy`` (try later); a claim whose owner died runs out, or
is taken at once when the owner was a process on this machine that is gone.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import ColumnElement, CursorResult, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from sciti.acquire import blobs
from sciti.acquire.claims import Lease, alive, claim_end, holder, owner_gone, this_machine
from sciti.acquire.connector import Connector, load_connector
from sciti.acquire.dbtext import db_text
from sciti.acquire.errors import AcquireError, ConnectorError, MissingColumn, UnitBusy
from sciti.acquire.formats import jsonl, tabular
from sciti.acquire.items import Parsed, Rejected
from sciti.acquire.mapping import Mapped, Target, map_staged
from sciti.acquire.quarantine_rows import insert_quarantine
from sciti.acquire.records import map_records
from sciti.acquire.registry import FORMATS, FormatContext
from sciti.acquire.stored_keys import StoredIds, check_units, stored_ids
from sciti.acquire.units import expand, files_in
from sciti.acquire.validation import codelists
from sciti.lake import data_folder, field_ids, open_lake
from sciti.model import get_kind
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope, utcnow
from sciti.settings import Settings

RAW_SCHEMA = pa.schema(
    [
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("unit", pa.string()),
        pa.field("object_key", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("media_type", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
        pa.field("record_count", pa.int64()),
    ]
)
MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "wco-xml": "application/xml",
    "edifact": "application/edifact",
}
PARQUET_MAGIC = b"PAR1"
DUCKDB_MEMORY = "2GB"  # per ingest; DuckDB spills to the work folder beyond it
log = logging.getLogger("sciti.acquire.runner")


def raw_table(source: str) -> str:
    """``raw.<source>``: one row per received unit (a hyphen becomes _ so SQL needs no quoting)."""
    return f"raw.{source.replace('-', '_')}"


@dataclass
class BatchResult:
    """Outcome of one batch. Counts reconcile: received = stored + quarantined."""

    batch_id: str
    connector: str
    status: str  # committed | duplicate | failed | busy (another process is ingesting it: try later)
    received: int = 0
    stored: int = 0
    quarantined: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    unit: str = ""
    error: str | None = None


class Runner:
    """Runs connectors over received units. One per process is plenty; it is cheap to make."""

    def __init__(self, settings: Settings):
        self.settings = settings
        Path(settings.home).mkdir(parents=True, exist_ok=True)  # embedded instance: SQLite files live here
        self.lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
        self.db = settings.resolved_ops_db_url
        migrate(self.db)
        self._ensured: set[str] = set()
        self._units: dict[str, tuple[str, str]] = {}  # batch id -> (unit, transport)
        self._token = uuid.uuid4().hex[:8]  # two runners of one process are two owners
        self.spool = Path(settings.home) / "spool"
        self.spool.mkdir(exist_ok=True)
        _clear_stale_spool(self.spool)

    # ---- entry points -------------------------------------------------------------------------

    @property
    def owner(self) -> str:
        """This runner as a batch's claim names it: ``machine:pid:token`` (the pid is read now, so a
        forked child is its own owner)."""
        return f"{this_machine()}:{os.getpid()}:{self._token}"

    def ingest_path(
        self,
        connector: Connector,
        path: Path,
        progress: Callable[[BatchResult, int], None] | None = None,
        *,
        unit: str | None = None,
    ) -> list[BatchResult]:
        """A file -> one batch; a folder -> one batch per matching file (``connector.files``), each
        named by its path under the folder. ``unit`` names a file's batch (default: its file name)."""
        path = Path(path)
        if path.is_dir():
            units = [(p, p.relative_to(path).as_posix()) for p in files_in(path, connector.files)]
        elif path.is_file():
            units = [(path, unit or path.name)]
        else:
            raise AcquireError(f"{path} does not exist", remedy="give a file or folder to ingest")
        results = []
        for file, unit in units:
            # One read: the bytes are hashed as they are copied into the object store (their key is
            # the SHA-256, i.e. the fingerprint). A unit sent again is stored once all the same.
            size = file.stat().st_size
            key = blobs.put_file(self.settings, file)
            result = self._ingest(connector, unit, key, _stored(key), size=size, transport="file")
            results.append(result)
            if progress:
                progress(result, size)
        return results

    def ingest_bytes(
        self,
        connector: Connector,
        data: bytes,
        unit: str,
        transport: str = "http",
        resubmission_of: int | None = None,
        fingerprint: str | None = None,
    ) -> BatchResult:
        """One received body (HTTP push, a message, a corrected unit) -> one batch.

        The batch is known by the sha256 of the bytes unless the caller names it (``fingerprint``):
        two MQTT messages with the same bytes are two messages, each counted."""
        key = blobs.put_bytes(self.settings, data)
        return self._ingest(
            connector,
            unit,
            fingerprint or key,
            lambda: key,
            size=len(data),
            transport=transport,
            resubmission_of=resubmission_of,
        )

    def ingest_rows(
        self,
        connector: Connector,
        rows: pa.Table | list[dict[str, Any]],
        unit: str,
        fingerprint: str,
        transport: str,
    ) -> BatchResult:
        """Rows keyed by source column names (SQL extraction window, MQTT flush) -> one batch.

        The rows are kept as a Parquet object so a crashed batch is re-derived from the same bytes.
        """
        if not connector.outputs:
            raise AcquireError(
                f"connector {connector.name} has no `outputs` to map rows with",
                remedy="add outputs (one projection per record kind) to the connector",
            )
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
        sink = io.BytesIO()
        pq.write_table(table, sink)
        data = sink.getvalue()
        key = blobs.put_bytes(self.settings, data)
        return self._ingest(
            connector, unit, fingerprint, lambda: key, size=len(data), transport=transport, object_key=key
        )

    def recover(self) -> list[BatchResult]:
        """Finish every batch a dead process left ``running`` (idempotent). A batch another live
        process is working on is left to it."""
        with session_scope(self.db) as s:
            pending = [b.id for b in s.scalars(select(Batch).where(Batch.status == "running"))]
        results = []
        for batch_id in pending:
            with session_scope(self.db) as s:
                batch = s.get(Batch, batch_id)
            if batch is None or batch.status != "running" or not batch.object_key:
                continue
            try:
                connector = load_connector(self.settings, batch.connector)
            except AcquireError:
                continue
            outcome, claimed = self._claim(batch_id)
            if outcome == "claimed":
                results.append(self._process(connector, claimed))
        return results

    # ---- the protocol -------------------------------------------------------------------------

    def _ingest(
        self,
        connector: Connector,
        unit: str,
        fingerprint: str,
        store: Callable[[], str],
        *,
        size: int,
        transport: str,
        resubmission_of: int | None = None,
        object_key: str | None = None,
    ) -> BatchResult:
        found = self._find(connector.name, fingerprint)
        if found is not None and found.status == "committed":
            return BatchResult(found.id, connector.name, "duplicate", unit=unit)
        key = store()  # bytes are safe before the batch exists, so recovery can always re-read them
        if found is None:
            # Registered with its claim in the same INSERT: no moment where another process could
            # take a batch nobody holds yet.
            batch = Batch(
                id=uuid.uuid4().hex,
                connector=connector.name,
                source=connector.source,
                transport=transport,
                unit=db_text(unit),
                fingerprint=fingerprint,
                object_key=object_key or key,
                status="running",
                resubmission_of=resubmission_of,
                started_at=utcnow(),
                claimed_by=self.owner,
                claimed_until=claim_end(),
            )
            try:
                with session_scope(self.db) as s:
                    s.add(batch)
            except IntegrityError:  # another process registered it a moment ago, and holds it
                found = self._find(connector.name, fingerprint)
                if found is None:
                    raise
            else:
                return self._process(connector, batch, fresh=True)
        # Known but not committed: crashed, failed, or being worked on right now by someone else.
        outcome, batch = self._claim(found.id)
        if outcome == "committed":
            return BatchResult(batch.id, connector.name, "duplicate", unit=unit)
        if outcome == "busy":
            return _busy(connector, batch, unit)
        return self._process(connector, batch)

    def _find(self, connector: str, fingerprint: str) -> Batch | None:
        with session_scope(self.db) as s:
            return s.scalars(
                select(Batch).where(Batch.connector == connector, Batch.fingerprint == fingerprint)
            ).first()

    def _claim(self, batch_id: str) -> tuple[str, Batch]:
        """Take a registered batch for this runner: ``claimed``, ``committed`` (nothing to do) or
        ``busy`` (another live process holds it).

        One conditional UPDATE, checked by its row count, so of two processes asking at once only
        one gets the batch: it is free when nobody holds it, the holder's time has run out, or the
        holder was a process on this machine that no longer runs (a crash, seen at once)."""
        with session_scope(self.db) as s:
            seen = s.get(Batch, batch_id)
        if seen is None:
            raise AcquireError(f"batch {batch_id} is no longer in the registry", remedy="send the unit again")
        if seen.status == "committed":
            return "committed", seen
        now = utcnow()
        free: ColumnElement[bool] = or_(
            Batch.claimed_by.is_(None), Batch.claimed_until.is_(None), Batch.claimed_until < now
        )
        if seen.claimed_by and owner_gone(seen.claimed_by):
            free = or_(free, Batch.claimed_by == seen.claimed_by)
        with session_scope(self.db) as s:
            done = s.execute(
                update(Batch)
                .where(Batch.id == batch_id, Batch.status != "committed", free)
                .values(status="running", error=None, claimed_by=self.owner, claimed_until=claim_end())
                .execution_options(synchronize_session=False)
            )
            won = cast(CursorResult[Any], done).rowcount == 1
        with session_scope(self.db) as s:
            batch = s.get(Batch, batch_id)
        if batch is None:
            raise AcquireError(f"batch {batch_id} is no longer in the registry", remedy="send the unit again")
        if won:
            return "claimed", batch
        return ("committed" if batch.status == "committed" else "busy"), batch

    def _process(self, connector: Connector, batch: Batch, *, fresh: bool = False) -> BatchResult:
        """Derive, write and commit one batch this runner has claimed. ``fresh``: registered just
        now, so no table can hold it yet and the history lookups (which grow with every snapshot)
        are skipped."""
        started = batch.started_at if batch.started_at.tzinfo else batch.started_at.replace(tzinfo=UTC)
        work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.spool))
        lease = Lease(self.db, batch.id, self.owner)
        lease.start()
        try:
            obj = blobs.object_path(self.settings, batch.object_key or "")
            mapped = self._derive(connector, obj, batch.unit, batch.id, started, work, self._target)
            tables = self._write(connector, batch, obj, mapped, started, fresh, lease)
            self._commit(connector, batch.id, mapped, tables, lease)
        except UnitBusy as exc:  # another process took the batch over: it is theirs to finish
            return BatchResult(batch.id, connector.name, "busy", unit=batch.unit, error=str(exc))
        except Exception as exc:  # a real failure: keep the batch retryable and say why
            message = db_text(str(exc)) or type(exc).__name__
            with session_scope(self.db) as s:  # only while it is still ours to mark
                s.execute(
                    update(Batch)
                    .where(Batch.id == batch.id, Batch.claimed_by == self.owner)
                    .values(
                        status="failed",
                        error=message,
                        finished_at=utcnow(),
                        claimed_by=None,
                        claimed_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            return BatchResult(batch.id, connector.name, "failed", unit=batch.unit, error=message)
        finally:
            lease.stop()
            shutil.rmtree(work, ignore_errors=True)
        return BatchResult(
            batch.id,
            connector.name,
            "committed",
            mapped.received,
            mapped.stored,
            len(mapped.rejects),
            tables,
            unit=batch.unit,
        )

    def _derive(
        self,
        connector: Connector,
        obj: Path,
        unit: str,
        batch_id: str,
        started: datetime,
        work: Path,
        target: Callable[[str], Target],
    ) -> Mapped:
        """The rows and rejects of a unit: a pure function of the stored bytes and the batch.

        Table-style parts write Parquet files into the tables' data folders (``target``), not yet
        committed; record-style parts give Arrow tables. ``_write`` commits each table once.
        """
        total = Mapped()
        raws: dict[str, str | None] = {}  # record-style units' text, for those found already stored
        lists = codelists(str(Path(self.settings.codelists_dir).resolve()))
        for n, part in enumerate(expand(obj, unit, connector.files, work)):
            if isinstance(part, Rejected):
                mapped = Mapped(received=1, rejects=[part])
            else:
                path, name = part
                try:
                    mapped = self._map_part(
                        connector, path, name, batch_id, started, work / f"part-{n}", lists, target, raws
                    )
                except MissingColumn as exc:  # say which file of the unit (a zip has several)
                    raise MissingColumn(f"{name}: {exc.message}", remedy=exc.remedy) from None
                except ConnectorError:
                    raise
                except AcquireError as exc:
                    mapped = Mapped(received=1, rejects=[Rejected(locator=name, reason=exc.message)])
            total.received += mapped.received
            total.stored += mapped.stored
            total.rejects += mapped.rejects
            for kind, files in mapped.files.items():
                total.files.setdefault(kind, []).extend(files)
            for kind, count in mapped.written.items():
                total.written[kind] = total.written.get(kind, 0) + count
            for kind, table in mapped.tables.items():
                total.tables[kind] = (
                    pa.concat_tables([total.tables[kind], table]) if kind in total.tables else table
                )
        if total.tables:
            self._drop_stored(total, batch_id, raws)
        return total

    def _stored(self, kind_name: str, batch_id: str) -> StoredIds | None:
        """A kind's table as the stored-key check reads it: rows of batches other than this one.

        None (no check) for incremental SQL extraction: a row updated in place at the source comes
        again with its key and new values, and the lake keeps each version written (decision 0100
        says why and what is next)."""
        if self._batch(batch_id)[1] == "sql":
            return None
        return stored_ids(self.lake, get_kind(kind_name).ident, batch_id)

    def _unit_of(self, batch_id: str) -> str:
        """The unit a batch received (its file name, message), as a quarantine reason names it."""
        return self._batch(batch_id)[0]

    def _batch(self, batch_id: str) -> tuple[str, str]:
        """(unit, transport) of a batch, read once."""
        if batch_id not in self._units:
            with session_scope(self.db) as s:
                found = s.get(Batch, batch_id)
            self._units[batch_id] = (found.unit, found.transport) if found is not None else ("", "")
        return self._units[batch_id]

    def _drop_stored(self, mapped: Mapped, batch_id: str, raws: dict[str, str | None]) -> None:
        """Quarantine the record-style units holding a record another batch already stored, or an
        earlier unit of this batch holds; their rows (children included) are not stored."""
        con = duckdb.connect(":memory:")
        try:
            rejected = check_units(con, mapped.tables, lambda k: self._stored(k, batch_id), self._unit_of)
        finally:
            con.close()
        if not rejected:
            return
        gone = pa.array(list(rejected), pa.string())
        for kind, table in mapped.tables.items():
            mapped.tables[kind] = table.filter(pc.invert(pc.is_in(table.column("locator"), gone)))
        for locator, why in rejected.items():
            mapped.rejects.append(Rejected(locator=locator, reason=why, raw=raws.get(locator)))
        mapped.stored -= len(rejected)

    def _map_part(
        self,
        connector: Connector,
        path: Path,
        unit: str,
        batch_id: str,
        started: datetime,
        work: Path,
        lists: Any,
        target: Callable[[str], Target],
        raws: dict[str, str | None],
    ) -> Mapped:
        work.mkdir(parents=True, exist_ok=True)
        fmt = connector.format
        with path.open("rb") as fh:
            if fh.read(4) == PARQUET_MAGIC and fmt != "parquet":
                fmt = "parquet"  # rows handed over by ingest_rows are kept as Parquet
        if connector.outputs:
            stager = {"csv": tabular.stage_csv, "parquet": tabular.stage_parquet, "jsonl": jsonl.stage}.get(
                fmt
            )
            if stager is None:
                raise ConnectorError(
                    f"format {fmt!r} is record-style and cannot use `outputs`",
                    remedy="remove `outputs` or use csv, jsonl or parquet",
                )
            con = duckdb.connect(":memory:")  # spills to the work folder past the memory limit
            try:
                con.execute(f"SET temp_directory = {tabular.sql_str(str(work / 'spill'))}")
                con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
                con.execute("SET preserve_insertion_order = true")
                con.execute("SET TimeZone = 'UTC'")  # text without a zone is UTC, as in the model
                staged = stager(con, path, unit=unit, options=connector.options, work=work)
                return map_staged(
                    con,
                    connector,
                    staged,
                    batch_id=batch_id,
                    ingested_at=started,
                    lists=lists,
                    target=target,
                    stored=lambda kind: self._stored(kind, batch_id),
                    unit_of=self._unit_of,
                )
            finally:
                con.close()
        ctx = FormatContext(settings=self.settings, connector=connector)
        items = FORMATS[fmt](path.read_bytes(), unit=unit, options=connector.options, ctx=ctx)
        return map_records(
            _kept(_guarded(items, unit), raws),
            source=connector.source,
            batch_id=batch_id,
            ingested_at=started,
            lists=lists,
        )

    def _write(
        self,
        connector: Connector,
        batch: Batch,
        obj: Path,
        mapped: Mapped,
        started: datetime,
        fresh: bool,
        lease: Lease,
    ) -> dict[str, int]:
        """Append each table once for this batch; skip tables whose history already has it.

        The claim is checked (and renewed) before each append: a runner that lost it stops here."""
        raw_ident = raw_table(connector.source)
        self._ensure(raw_ident, RAW_SCHEMA)
        lease.hold()
        if fresh or not self.lake.has_batch(raw_ident, batch.id):
            row = pa.table(
                {
                    "batch_id": [batch.id],
                    "unit": [batch.unit],
                    "object_key": [batch.object_key],
                    "size": [obj.stat().st_size if obj.exists() else None],
                    "media_type": [MEDIA_TYPES.get(connector.format, "application/octet-stream")],
                    "received_at": pa.array([started], pa.timestamp("us", tz="UTC")),
                    "record_count": [mapped.received],
                },
                schema=RAW_SCHEMA,
            )
            self.lake.append(raw_ident, row, batch_id=batch.id)
        tables = {get_kind(k).ident: n for k, n in mapped.written.items()}
        for kind_name, files in mapped.files.items():
            ident = get_kind(kind_name).ident
            if files:
                lease.hold()
                if fresh or not self.lake.has_batch(ident, batch.id):
                    self.lake.append_files(ident, files, batch_id=batch.id)
        for kind_name, table in mapped.tables.items():
            tables[get_kind(kind_name).ident] = self._append(
                kind_name, table, batch_id=batch.id, fresh=fresh, lease=lease
            )
        return tables

    def _append(self, kind_name: str, table: pa.Table, *, batch_id: str, fresh: bool, lease: Lease) -> int:
        """One append of a kind's rows for a batch, unless the table's history already has it."""
        kind = get_kind(kind_name)
        if table.num_rows:
            self._ensure(kind.ident, kind.arrow_schema())
            lease.hold()
            if fresh or not self.lake.has_batch(kind.ident, batch_id):
                self.lake.append(kind.ident, table, batch_id=batch_id)
        return table.num_rows

    def _target(self, kind_name: str) -> Target:
        """Where a kind's Parquet files are written: its table's data folder, with its field ids."""
        kind = get_kind(kind_name)
        self._ensure(kind.ident, kind.arrow_schema())
        table = self.lake.table(kind.ident)
        return Target(data_folder(table), field_ids(table))

    def _ensure(self, ident: str, schema: pa.Schema) -> None:
        """Create or evolve a table once per runner (each check reloads the table's metadata)."""
        if ident not in self._ensured:
            self.lake.ensure_table(ident, schema)
            self._ensured.add(ident)

    def _commit(
        self, connector: Connector, batch_id: str, mapped: Mapped, tables: dict[str, int], lease: Lease
    ) -> None:
        """Quarantine entries and the committed status in one transaction: both or neither, and
        only while this runner still holds the batch (the claim is released by the same UPDATE)."""
        merged: dict[str, Rejected] = {}
        for r in mapped.rejects:  # one entry per locator (unique per batch)
            if r.locator in merged:
                merged[r.locator].reason += f"; {r.reason}"
            else:
                merged[r.locator] = Rejected(r.locator, r.reason, r.field, r.raw, dict(r.details))
        with session_scope(self.db) as s:
            # First, so that on PostgreSQL the batch row stays locked until this transaction ends.
            done = s.execute(
                update(Batch)
                .where(Batch.id == batch_id, Batch.claimed_by == lease.owner)
                .values(
                    status="committed",
                    error=None,
                    finished_at=utcnow(),
                    received=mapped.received,
                    stored=mapped.stored,
                    quarantined=len(mapped.rejects),
                    tables=tables,
                    claimed_by=None,
                    claimed_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], done).rowcount != 1:
                raise lease.lost_error()  # rolls this transaction back: nothing is marked
            s.execute(delete(QuarantineRecord).where(QuarantineRecord.batch_id == batch_id))
            insert_quarantine(s, batch_id, connector, list(merged.values()))
        mapped.rejects = list(merged.values()) if len(merged) == len(mapped.rejects) else mapped.rejects


def _busy(connector: Connector, batch: Batch, unit: str) -> BatchResult:
    until = batch.claimed_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    when = f", claimed until {until:%Y-%m-%d %H:%M:%S} UTC unless renewed" if until else ""
    message = (
        f"{unit} is being ingested by another process ({holder(batch.claimed_by)}, batch {batch.id}"
        f"{when}); nothing was done here: try again later"
    )
    return BatchResult(batch.id, connector.name, "busy", unit=unit, error=message)


def _stored(key: str) -> Callable[[], str]:
    """The ``store`` step of a unit whose bytes are already in the object store."""
    return lambda: key


def _clear_stale_spool(spool: Path) -> None:
    """Remove work folders of processes that are gone (a killed ingest leaves its folder behind)."""
    for folder in spool.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _kept(items: Any, raws: dict[str, str | None]) -> Any:
    """Pass the units on, keeping each one's text by locator (for a quarantine entry made later)."""
    for item in items:
        if isinstance(item, Parsed):
            raws[item.locator] = item.raw
        yield item


def _guarded(items: Any, unit: str) -> Any:
    """A reader that fails half-way quarantines the rest of its unit instead of crashing the batch."""
    try:
        yield from items
    except (AcquireError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure on bad input becomes a reason
        yield Rejected(locator=unit, reason=f"the reader stopped on this unit: {type(exc).__name__}: {exc}")
