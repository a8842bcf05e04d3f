"""Incremental extraction from a source SQL database by a (watermark, tiebreak) cursor.

Each round reads the rows after the last committed cursor, ordered by (watermark, tiebreak), at
most ``batch_rows`` at a time. One window is one batch. Why a pair and not the watermark alone:
many rows share a timestamp, and a window may end in the middle of them; ``watermark > last``
would skip the rest, ``>=`` would repeat them. ``(watermark, tiebreak) > (last, last_key)`` does
neither, given the tiebreak is unique.

Exactly once across crashes, in three steps:

1. the window (from-cursor, to-cursor) is written to ``ConnectorState`` as *pending*;
2. its rows go to the runner with a fingerprint made of the window bounds;
3. the cursor moves to the window end and *pending* is cleared, in one ops transaction.

A crash after 1 re-reads exactly the same window on restart: if step 2 had committed, the runner
answers ``duplicate`` (same fingerprint) and step 3 completes; if not, the window is ingested now.

Limitation: a source transaction that stays open while later rows commit can commit a row whose
watermark is already behind the cursor; that row would be missed. ``lag_seconds`` (only rows
older than the source's clock minus the lag are read) removes the risk for transactions shorter
than the lag. See docs/transports.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import URL, Engine, create_engine, func, make_url, select, text

from sciti.acquire.transports.rows import rows_to_table
from sciti.acquire.transports.spec import SqlSpec, redact, secret
from sciti.acquire.transports.worker import Worker
from sciti.ops import ConnectorState, session_scope
from sciti.settings import Settings

log = logging.getLogger("sciti.transports.sql")

CURSOR_KEY, PENDING_KEY, EPOCH_KEY = "sql.cursor", "sql.pending", "sql.epoch"


@dataclass(frozen=True)
class Cursor:
    """Position after the last row taken: its watermark and tiebreak values."""

    watermark: Any
    tiebreak: Any

    def encode(self) -> dict[str, Any]:
        return {"watermark": _encode(self.watermark), "tiebreak": _encode(self.tiebreak)}

    @classmethod
    def decode(cls, doc: dict[str, Any]) -> Cursor:
        return cls(_decode(doc["watermark"]), _decode(doc["tiebreak"]))


def _encode(value: Any) -> list[Any]:
    """A typed JSON form so a cursor binds back with the source column's own type."""
    if isinstance(value, datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, bool | int | float | str) or value is None:
        return ["plain", value]
    return ["str", str(value)]


def _decode(item: list[Any]) -> Any:
    kind, value = item
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value


class SqlExtractor(Worker):
    """Extracts new and changed rows of one source table or query into the lake."""

    def __init__(self, settings: Settings, connector: Any, spec: SqlSpec, runner: Any):
        super().__init__(f"sql-{connector.name}", spec.every_seconds)
        self.settings = settings
        self.connector = connector
        self.spec = spec
        self.runner = runner
        self._engine: Engine | None = None
        self._engine_fingerprint = ""

    # -- source side -------------------------------------------------------------------------
    def _url(self) -> URL:
        """The source URL with its secrets resolved now (a rotated secret is seen within the cache time)."""
        actor = f"connector:{self.connector.name}"
        raw = self.spec.url or secret(self.spec.url_secret or "", self.settings, actor=actor)
        url = make_url(raw)
        if self.spec.password_secret:
            url = url.set(password=secret(self.spec.password_secret, self.settings, actor=actor))
        return url

    @property
    def engine(self) -> Engine:
        url = self._url()
        # A changed credential (rotation) gets a new engine; pooled connections of the old one go.
        fingerprint = hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()
        if self._engine is None or fingerprint != self._engine_fingerprint:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = create_engine(url, pool_pre_ping=True, pool_size=1, max_overflow=1)
            self._engine_fingerprint = fingerprint
        return self._engine

    def describe(self) -> str:
        """Where we read from, safe for logs (password redacted)."""
        url = self.spec.url or f"secret:{self.spec.url_secret}"
        return f"{redact(url)} {self.spec.table or 'query'}"

    def _select(self, after: Cursor | None, until: Cursor | None, upper: Any, limit: int | None):
        q = self.engine.dialect.identifier_preparer.quote
        wm, tb = q(self.spec.watermark), q(self.spec.tiebreak)
        base = (
            self.spec.query or f"SELECT * FROM {'.'.join(q(p) for p in (self.spec.table or '').split('.'))}"
        )
        where: list[str] = [f"{wm} IS NOT NULL"]
        params: dict[str, Any] = {}
        if after is not None:
            where.append(f"({wm} > :after_w OR ({wm} = :after_w AND {tb} > :after_t))")
            params |= {"after_w": after.watermark, "after_t": after.tiebreak}
        if until is not None:
            where.append(f"({wm} < :until_w OR ({wm} = :until_w AND {tb} <= :until_t))")
            params |= {"until_w": until.watermark, "until_t": until.tiebreak}
        if upper is not None:
            where.append(f"{wm} <= :upper")
            params["upper"] = upper
        sql = f"SELECT * FROM ({base}) AS sciti_src WHERE {' AND '.join(where)} ORDER BY {wm}, {tb}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return text(sql), params

    def read(self, after: Cursor | None, until: Cursor | None = None, limit: int | None = None) -> list[dict]:
        """Rows strictly after ``after`` and up to ``until`` (inclusive), in cursor order."""
        with self.engine.connect() as conn:
            upper = None
            if self.spec.lag_seconds and until is None:
                now = conn.execute(select(func.current_timestamp())).scalar_one()
                now = datetime.fromisoformat(now) if isinstance(now, str) else now
                upper = now - timedelta(seconds=self.spec.lag_seconds)
            stmt, params = self._select(after, until, upper, limit)
            return [dict(row) for row in conn.execute(stmt, params).mappings()]

    # -- state side ----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        with session_scope(self.settings.resolved_ops_db_url) as s:
            rows = s.query(ConnectorState).filter_by(connector=self.connector.name).all()
            return {r.key: json.loads(r.value) for r in rows}

    def _put(self, values: dict[str, Any | None]) -> None:
        """Set (or, for None, remove) state keys in one transaction."""
        with session_scope(self.settings.resolved_ops_db_url) as s:
            for key, value in values.items():
                row = s.get(ConnectorState, (self.connector.name, key))
                if value is None:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(ConnectorState(connector=self.connector.name, key=key, value=json.dumps(value)))
                else:
                    row.value = json.dumps(value)

    def cursor(self) -> Cursor | None:
        doc = self._state().get(CURSOR_KEY)
        return Cursor.decode(doc) if doc else None

    def reset(self) -> None:
        """Forget the cursor: the next run extracts everything again, as new batches."""
        epoch = int(self._state().get(EPOCH_KEY, 0)) + 1
        self._put({CURSOR_KEY: None, PENDING_KEY: None, EPOCH_KEY: epoch})

    # -- one round -------------------------------------------------------------------------------
    def step(self) -> None:
        self.run_once()

    def run_once(self) -> list[Any]:
        """Finish a pending window, then take windows until the source has nothing newer."""
        state = self._state()
        epoch = int(state.get(EPOCH_KEY, 0))
        results = []
        pending = state.get(PENDING_KEY)
        if pending:
            after = Cursor.decode(pending["after"]) if pending["after"] else None
            until = Cursor.decode(pending["until"])
            results.append(self._commit_window(self.read(after, until), after, until, epoch))
            if _busy(results[-1]):  # the window stays pending: the next round asks again
                return [r for r in results if r is not None]
        while not self.stopping:
            after = self.cursor()
            rows = self.read(after, limit=self.spec.batch_rows)
            if not rows:
                break
            last = rows[-1]
            until = Cursor(last[self.spec.watermark], last[self.spec.tiebreak])
            self._put({PENDING_KEY: {"after": after.encode() if after else None, "until": until.encode()}})
            results.append(self._commit_window(rows, after, until, epoch))
            if len(rows) < self.spec.batch_rows or _busy(results[-1]):
                break
        return [r for r in results if r is not None]

    def _commit_window(self, rows: list[dict], after: Cursor | None, until: Cursor, epoch: int) -> Any:
        result = None
        if rows:  # an empty re-read (all rows changed since) has nothing left to store
            bounds = json.dumps([epoch, after.encode() if after else None, until.encode()], sort_keys=True)
            fingerprint = hashlib.sha256(f"sql\x1f{self.connector.name}\x1f{bounds}".encode()).hexdigest()
            unit = (
                f"sql:{self.spec.table or 'query'}#{self.spec.watermark}=({_show(after)} .. {_show(until)}]"
            )
            result = self.runner.ingest_rows(self.connector, rows_to_table(rows), unit, fingerprint, "sql")
            if getattr(result, "status", None) == "failed":
                raise RuntimeError(
                    f"extraction batch {result.batch_id} failed; the window is retried next round"
                )
            if _busy(result):  # another process is ingesting this very window: ask again next round
                log.info(
                    "sql window is being ingested by another process; retried next round",
                    extra={"connector": self.connector.name, "batch_id": result.batch_id},
                )
                return result
            log.info(
                "sql window ingested",
                extra={"connector": self.connector.name, "rows": len(rows), "status": result.status},
            )
        self._put({CURSOR_KEY: until.encode(), PENDING_KEY: None})
        return result

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _busy(result: Any) -> bool:
    return getattr(result, "status", None) == "busy"


def _show(cursor: Cursor | None) -> str:
    return "start" if cursor is None else f"{cursor.watermark}/{cursor.tiebreak}"
