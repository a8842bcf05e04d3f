"""Quarantine entries written in bulk, in the batch's own commit (see acquire/runner.py).

A big file may quarantine 100,000s of rows: they go through the driver (executemany, or one COPY
on PostgreSQL), not the ORM, whose per-row work would dominate the batch.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from sciti.acquire.connector import Connector
from sciti.acquire.dbtext import db_text, nul_note
from sciti.acquire.items import Rejected
from sciti.ops import QuarantineRecord, utcnow

QUARANTINE_CHUNK = 10_000


QUARANTINE_COLUMNS = (
    "batch_id",
    "connector",
    "source",
    "locator",
    "field",
    "reason",
    "raw",
    "details",
    "status",
    "created_at",
)


def insert_quarantine(session: Session, batch_id: str, connector: Connector, rejects: list[Rejected]) -> None:
    """Bulk insert through the driver's executemany: a big file may quarantine 100,000s of rows and
    the ORM's per-row work would dominate the batch."""
    conn = session.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_quarantine(conn, batch_id, connector, rejects)
        return
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    now: Any = utcnow()
    if sqlite:  # the text form SQLAlchemy itself stores in SQLite, so reads parse it back
        now = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    sql = (
        f"INSERT INTO {QuarantineRecord.__tablename__} ({', '.join(QUARANTINE_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(QUARANTINE_COLUMNS))})"
    )
    rows = [_quarantine_row(batch_id, connector, r, now) for r in rejects]
    for start in range(0, len(rows), QUARANTINE_CHUNK):
        conn.exec_driver_sql(sql, rows[start : start + QUARANTINE_CHUNK])


def _copy_quarantine(conn: Any, batch_id: str, connector: Connector, rejects: list[Rejected]) -> None:
    """PostgreSQL: one COPY on the session's own connection (so it is part of its transaction)."""
    now = utcnow()
    sql = f"COPY {QuarantineRecord.__tablename__} ({', '.join(QUARANTINE_COLUMNS)}) FROM STDIN"
    with conn.connection.driver_connection.cursor() as cur, cur.copy(sql) as copy:
        for r in rejects:
            copy.write_row(_quarantine_row(batch_id, connector, r, now))


def _quarantine_row(batch_id: str, connector: Connector, r: Rejected, now: Any) -> tuple:
    """One quarantine row in QUARANTINE_COLUMNS order, its text storable on every backend.

    A NUL (0x00) from the source is shown as ␀ (PostgreSQL text cannot hold it; the bytes as
    received are in the object store) and the reason says so and where (decision 0085)."""
    details = orjson.dumps(r.details).decode()  # JSON writes a NUL as \u0000: plain ASCII
    source = (batch_id, connector.name, connector.source)
    reason = r.reason
    note = nul_note(r.raw) or nul_note(reason)
    if note and "NUL byte" not in reason:
        reason = f"{reason}; {note}"
    text = (db_text(r.locator), db_text(r.field), db_text(reason), db_text(r.raw))
    return (*source, *text, details, "open", now)
