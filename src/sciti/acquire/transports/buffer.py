"""Durable staging for real-time feeds: accept one message at a time, write the lake in bulk.

Why: a feed of one record per message written straight to Iceberg would make one Parquet file
and one snapshot per record. Instead each message is committed to ``ops.StagedRecord`` (unique
per connector + message id) before the sender gets its acknowledgement, and a flush moves up to
``buffer_max_rows`` staged messages into the lake as ONE batch, at least every
``buffer_max_seconds``.

A flush is exactly once:

1. claim: one ops transaction stamps the chosen rows with a new ``flush_batch`` label; the
   fingerprint is the sha256 of the stamped rows' message ids, so a restart recomputes it;
2. ingest: ``runner.ingest_rows(..., fingerprint)``; the runner keeps (connector, fingerprint)
   unique, so a repeat answers ``duplicate``. Rows carry ``sciti_message_id`` and
   ``sciti_locator`` columns, kept with the batch's Parquet object: a std row's locator
   ``<unit>#row=N`` leads to row N there and so to the message;
3. settle: the rows get ``flushed_at`` and lose their payload.

A crash after 1 or 2 leaves stamped, unsettled rows; the next flush (or ``recover``) re-runs 2
with the same rows and fingerprint, then 3. Settled rows are kept ``dedupe_seconds`` so that a
message redelivered after its flush (the acknowledgement was lost) is recognised and dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from sciti.acquire.dbtext import NUL, db_text
from sciti.acquire.transports.rows import rows_to_table, with_mapped_columns
from sciti.ops import StagedRecord, get_engine, session_scope, utcnow
from sciti.settings import Settings

log = logging.getLogger("sciti.transports.buffer")
MESSAGE_ID_LENGTH = 128  # StagedRecord.message_id


@dataclass(frozen=True)
class Staged:
    message_id: str
    locator: str
    payload: str


class StagingBuffer:
    """The durable buffer of one connector."""

    def __init__(
        self,
        settings: Settings,
        connector: Any,
        runner: Any,
        *,
        transport: str = "mqtt",
        max_rows: int | None = None,
        max_seconds: float | None = None,
        dedupe_seconds: float = 3600.0,
    ):
        self.settings = settings
        self.url = settings.resolved_ops_db_url
        self.connector = connector
        self.name: str = connector.name
        self.runner = runner
        self.transport = transport
        self.max_rows = max_rows or settings.buffer_max_rows
        self.max_seconds = settings.buffer_max_seconds if max_seconds is None else max_seconds
        self.dedupe_seconds = dedupe_seconds

    # -- accepting ---------------------------------------------------------------------------
    def stage(self, message_id: str, locator: str, payload: str) -> bool:
        """Commit one message; False when this message id is already staged (a redelivery).

        Every value is made storable first (decision 0085): a NUL in the id or locator is shown
        as ␀, and a payload holding one is kept as base64, so it is exact and PostgreSQL takes it.
        """
        values = {
            "connector": self.name,
            "message_id": (db_text(message_id) or "")[:MESSAGE_ID_LENGTH],
            "locator": db_text(locator),
            "payload": storable(payload),
            "received_at": utcnow(),
        }
        engine = get_engine(self.url)
        dialect = engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(StagedRecord)
            stmt = (
                ins.values(**values)
                .on_conflict_do_nothing(index_elements=["connector", "message_id"])
                .returning(StagedRecord.id)
            )
            with engine.begin() as conn:  # a row comes back only when it was inserted
                return conn.execute(stmt).first() is not None
        try:
            with engine.begin() as conn:
                conn.execute(insert(StagedRecord).values(**values))
            return True
        except IntegrityError:
            return False

    def reachable(self) -> bool:
        """Whether the operational database answers now (tells a failed message from an outage)."""
        try:
            with get_engine(self.url).connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure to answer means "not reachable"
            return False

    def pending(self) -> int:
        """Messages staged and not yet in the lake."""
        with session_scope(self.url) as s:
            q = select(func.count()).where(
                StagedRecord.connector == self.name, StagedRecord.flushed_at.is_(None)
            )
            return int(s.execute(q).scalar_one())

    def due(self) -> bool:
        """Whether enough rows or enough time has gathered for a flush."""
        with session_scope(self.url) as s:
            count, oldest = s.execute(
                select(func.count(), func.min(StagedRecord.received_at)).where(
                    StagedRecord.connector == self.name, StagedRecord.flushed_at.is_(None)
                )
            ).one()
        if not count:
            return False
        if count >= self.max_rows:
            return True
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        return (datetime.now(UTC) - oldest).total_seconds() >= self.max_seconds

    # -- flushing ----------------------------------------------------------------------------
    def flush(self) -> list[Any]:
        """Finish interrupted flushes, then move everything staged to the lake; batch results."""
        results = self.recover()
        with session_scope(self.url) as s:  # what arrives during this flush waits for the next one
            ceiling = s.execute(
                select(func.max(StagedRecord.id)).where(
                    StagedRecord.connector == self.name, StagedRecord.flush_batch.is_(None)
                )
            ).scalar_one()
        while ceiling is not None and (claimed := self._claim(ceiling)) is not None:
            results += self._ingest(*claimed)
        self.purge()
        return results

    def recover(self) -> list[Any]:
        """Re-run flushes that were claimed but not settled (a crash or a failed ingest)."""
        with session_scope(self.url) as s:
            labels = (
                s.execute(
                    select(StagedRecord.flush_batch)
                    .where(
                        StagedRecord.connector == self.name,
                        StagedRecord.flush_batch.is_not(None),
                        StagedRecord.flushed_at.is_(None),
                    )
                    .distinct()
                )
                .scalars()
                .all()
            )
        results = []
        for label in sorted(label for label in labels if label):
            results += self._ingest(label, self._rows(label))
        return results

    def _rows(self, label: str) -> list[Staged]:
        with session_scope(self.url) as s:
            found = s.execute(
                select(StagedRecord.message_id, StagedRecord.locator, StagedRecord.payload)
                .where(StagedRecord.connector == self.name, StagedRecord.flush_batch == label)
                .order_by(StagedRecord.id)
            ).all()
        return [Staged(*row) for row in found]

    def _claim(self, ceiling: int) -> tuple[str, list[Staged]] | None:
        """Stamp up to ``max_rows`` unclaimed rows (id <= ``ceiling``) with a new label, in one transaction.

        ``flush_batch IS NULL`` in the UPDATE means two flushers can never claim the same row;
        the fingerprint is computed from the rows actually stamped, so a restart recomputes it.
        """
        unclaimed = (
            StagedRecord.connector == self.name,
            StagedRecord.flush_batch.is_(None),
            StagedRecord.id <= ceiling,
        )
        label = uuid.uuid4().hex
        with session_scope(self.url) as s:
            first = s.execute(select(func.min(StagedRecord.id)).where(*unclaimed)).scalar_one()
            if first is None:
                return None
            last = s.execute(
                select(StagedRecord.id)
                .where(*unclaimed)
                .order_by(StagedRecord.id)
                .offset(self.max_rows - 1)
                .limit(1)
            ).scalar_one_or_none()
            bound = () if last is None else (StagedRecord.id <= last,)
            s.execute(
                update(StagedRecord)
                .where(*unclaimed, *bound)
                .values(flush_batch=label)
                .execution_options(synchronize_session=False)
            )
        rows = self._rows(label)
        return (label, rows) if rows else None

    def _ingest(self, label: str, rows: list[Staged]) -> list[Any]:
        """Send one claimed group to the runner, then settle it; the batch results."""
        fp = fingerprint([r.message_id for r in rows])
        good, bad = split(rows, self.connector)
        results = []
        for item in bad:  # rare: each becomes a small batch the jsonl reader quarantines with its reason
            results.append(
                self.runner.ingest_bytes(
                    self.connector,
                    raw_bytes(item.payload),
                    item.locator,
                    self.transport,
                    # one batch per message, not per content: two empty messages are two, each counted
                    fingerprint=fingerprint([item.message_id]),
                )
            )
        if good:
            unit = f"{self.transport}:{self.name}/{fp[:16]}"
            results.append(
                self.runner.ingest_rows(
                    self.connector,
                    with_mapped_columns(rows_to_table(good, as_text=True), self.connector),
                    unit,
                    fp,
                    self.transport,
                )
            )
        failed = [r for r in results if getattr(r, "status", None) == "failed"]
        if failed:
            raise RuntimeError(
                f"flush batch {failed[0].batch_id} failed ({failed[0].error}); its messages stay staged"
            )
        busy = [r for r in results if getattr(r, "status", None) == "busy"]
        if busy:  # another process is flushing these very messages: the next flush settles them
            log.info(
                "buffer flush is being ingested by another process; its messages stay staged",
                extra={"connector": self.name, "batches": [r.batch_id for r in busy]},
            )
            return results
        with session_scope(self.url) as s:
            s.execute(
                update(StagedRecord)
                .where(StagedRecord.connector == self.name, StagedRecord.flush_batch == label)
                .values(flushed_at=utcnow(), payload="")
                .execution_options(synchronize_session=False)
            )
        log.info("buffer flushed", extra={"connector": self.name, "rows": len(rows), "batches": len(results)})
        return results

    def purge(self) -> int:
        """Forget settled messages older than the dedupe window."""
        cutoff = utcnow() - timedelta(seconds=self.dedupe_seconds)
        with session_scope(self.url) as s:
            done = s.execute(
                delete(StagedRecord)
                .where(StagedRecord.connector == self.name, StagedRecord.flushed_at < cutoff)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(done, "rowcount", 0) or 0)


def fingerprint(message_ids: list[str]) -> str:
    """Fingerprint of a flush: sha256 of its sorted message ids (order of arrival does not matter)."""
    digest = hashlib.sha256(b"flush")
    for mid in sorted(message_ids):
        digest.update(b"\x1f" + mid.encode("utf-8"))
    return digest.hexdigest()


def split(staged: list[Staged], connector: Any) -> tuple[list[dict[str, Any]], list[Staged]]:
    """Rows for the runner (JSON objects, tagged with their message id and locator) and the rest.

    A payload that is not a JSON object goes to the connector's jsonl reader on its own, which
    quarantines it with the parser's reason; for other formats it stays a row holding the text.
    """
    good, bad = [], []
    for item in staged:
        data = raw_bytes(item.payload)
        if not data.strip():  # an empty message is received all the same: the reader quarantines it
            bad.append(item)
            continue
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            if connector.format == "jsonl":
                bad.append(item)
                continue
            value = {"sciti_raw": item.payload}
        good.append({**value, "sciti_message_id": item.message_id, "sciti_locator": item.locator})
    return good, bad


def storable(payload: str) -> str:
    """``payload`` as the staging table can keep it: as is, or ``base64:...`` of its UTF-8 when
    it holds a NUL (PostgreSQL text cannot) or text no encoding can write (a lone surrogate)."""
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError:
        data = payload.encode("utf-8", "surrogatepass")
    else:
        if NUL not in payload:
            return payload
    return "base64:" + base64.b64encode(data).decode("ascii")


def raw_bytes(payload: str) -> bytes:
    """The payload as received (non-UTF-8 payloads are staged as ``base64:...``)."""
    if payload.startswith("base64:"):
        return base64.b64decode(payload[7:])
    return payload.encode("utf-8")
