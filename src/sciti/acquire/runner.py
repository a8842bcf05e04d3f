"""The runner: every received unit becomes one batch, stored exactly once or quarantined, never lost.

Commit protocol (docs/decisions/0009): keep the bytes in the object store; register the batch
(status ``running``) under (connector, sha256) so the same unit sent again is a no-op; derive the
rows deterministically from the stored bytes; append each lake table once, tagged with the batch
id; then, in one operational-database transaction, write the quarantine entries and mark the
batch committed. A batch found ``running`` (the process died) is recovered by deriving the same
rows again and appending only to tables whose history does not yet show the batch.

A record is stored once (docs/decisions/0100, 0105): a source row or unit whose records another
batch already stored, or an earlier row or unit of the batch holds, with the same values is counted
as already stored; with other values it is quarantined (children go with their parent). Rows the
batch itself stored are its own: a recovered batch finds them and is not rejected by them.

One process at a time works on a batch (docs/decisions/0094): it takes the batch's claim with a
conditional UPDATE, renews it while it works, and commits only while it still holds it. Another
caller with the same unit is answered ``busy`` (try later); a claim whose owner died runs out, or
is taken at once when the owner was a process on this machine that is gone.

Here: the entry points and the claim. ``derive`` reads and maps a unit (``parts`` chooses the
reader), ``writes`` appends to the lake and commits, ``results`` holds what a batch gives back.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import ColumnElement, CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError

from sciti.acquire import blobs
from sciti.acquire.claims import Lease, alive, claim_end, owner_gone, this_machine
from sciti.acquire.connector import Connector, load_connector
from sciti.acquire.dbtext import db_text
from sciti.acquire.derive import derive
from sciti.acquire.errors import AcquireError, UnitBusy
from sciti.acquire.mapping import Mapped
from sciti.acquire.parts import DUCKDB_MEMORY, PARQUET_MAGIC
from sciti.acquire.results import BatchResult, busy_result
from sciti.acquire.source_lock import SourceBusy, hold_source
from sciti.acquire.stored_keys import StoredIds, stored_ids
from sciti.acquire.units import BUNDLE, files_in
from sciti.acquire.writes import MEDIA_TYPES, RAW_SCHEMA, LakeWriter, commit_batch, raw_table
from sciti.lake import open_lake
from sciti.model import get_kind
from sciti.ops import Batch, migrate, session_scope, utcnow
from sciti.settings import Settings

# Moved to their own modules; still importable from here.
__all__ = [
    "DUCKDB_MEMORY",
    "MEDIA_TYPES",
    "PARQUET_MAGIC",
    "RAW_SCHEMA",
    "BatchResult",
    "Runner",
    "raw_table",
]

log = logging.getLogger("sciti.acquire.runner")


class Runner:
    """Runs connectors over received units. One per process is plenty; it is cheap to make."""

    def __init__(self, settings: Settings):
        self.settings = settings
        Path(settings.home).mkdir(parents=True, exist_ok=True)  # embedded instance: SQLite files live here
        self.lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
        self.db = settings.resolved_ops_db_url
        migrate(self.db)
        self.writer = LakeWriter(self.lake)
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
            return busy_result(connector.name, batch, unit)
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
            # From the first read of what the source stored to the commit (decision 0119).
            with hold_source(self.settings, connector.source):
                mapped = derive(
                    self.settings, connector, obj, batch.unit, batch.id, started, work, self.writer.target,
                    lambda kind: self._stored(connector, kind, batch.id), self._unit_of,
                    every_member=self._batch(batch.id)[1] == BUNDLE,
                )  # fmt: skip
                tables = self._write(connector, batch, obj, mapped, started, fresh, lease)
                commit_batch(self.db, connector, batch.id, mapped, tables, lease)
        except SourceBusy as exc:  # waited too long for the source: free the batch for a retry now
            with session_scope(self.db) as s:
                s.execute(
                    update(Batch)
                    .where(Batch.id == batch.id, Batch.claimed_by == self.owner)
                    .values(claimed_by=None, claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
            return BatchResult(batch.id, connector.name, "busy", unit=batch.unit, error=str(exc))
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
            already_stored=mapped.already_stored,
            replaced=mapped.changes.rows,
            parts=mapped.parts,
        )

    def _stored(self, connector: Connector, kind_name: str, batch_id: str) -> StoredIds | None:
        """A kind's table as the stored-key check reads it: rows of batches other than this one.

        None (no check) for incremental SQL extraction unless the connector says what a changed row
        does (``on_change``): a row updated in place at the source comes again with its key and new
        values, and the lake keeps each version written (decisions 0012, 0100; 0112 for replace)."""
        if self._batch(batch_id)[1] == "sql" and connector.on_change is None:
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
        """Append each table once for this batch (``LakeWriter.write``)."""
        return self.writer.write(connector, batch, obj, mapped, started, fresh, lease)


def _stored(key: str) -> Callable[[], str]:
    """The ``store`` step of a unit whose bytes are already in the object store."""
    return lambda: key


def _clear_stale_spool(spool: Path) -> None:
    """Remove work folders of processes that are gone (a killed ingest leaves its folder behind)."""
    for folder in spool.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
