"""One batch of a source reads what is stored and writes at a time (docs/decisions/0119).

A batch reads what its source already stored (the stored-key check, decisions 0100 and 0105; the
numbering of WCO amendments, 0114) and then appends. Two batches of one source doing that at the
same moment could each miss the other's rows: both would store one record, or give two amendments
one version. The runner holds the source's lock from before that read until the batch is
committed, so the later batch starts from the earlier one's rows.

The lock frees itself when its holder dies, so nothing waits on a crashed process:
- an embedded instance (SQLite operational database, every process on one machine): an exclusive
  ``flock`` on a file in the instance's ``locks`` folder;
- a PostgreSQL operational database (processes may run on several machines): a session advisory
  lock, on a connection of its own, which ends with the connection.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from sciti.acquire.errors import UnitBusy
from sciti.ops.db import get_engine
from sciti.settings import Settings

log = logging.getLogger("sciti.acquire.runner")

# A batch waits this long for another batch of its source before it gives up as busy (its unit is
# kept and registered: recovery or the sender tries again). Batches of one source usually take
# seconds; a very large file can take minutes.
WAIT_SECONDS = 600.0
_POLL_FIRST, _POLL_MAX = 0.02, 0.5


class SourceBusy(UnitBusy):
    """Another batch of the source held its lock for longer than a batch waits."""


def _name(source: str) -> str:
    return hashlib.sha256(f"sciti.source\x1f{source}".encode()).hexdigest()[:32]


def advisory_key(source: str) -> int:
    """The PostgreSQL advisory lock key of a source (a signed 64-bit number)."""
    return int.from_bytes(bytes.fromhex(_name(source))[:8], "big", signed=True)


@contextmanager
def hold_source(settings: Settings, source: str, wait: float | None = None) -> Iterator[None]:
    """Hold ``source``'s lock for the block; wait for another holder up to ``wait`` seconds
    (WAIT_SECONDS by default), then raise ``UnitBusy``."""
    limit = WAIT_SECONDS if wait is None else wait
    url = settings.resolved_ops_db_url
    held = (
        _file_lock(settings, source, limit)
        if url.startswith("sqlite")
        else _advisory_lock(url, source, limit)
    )
    with held:
        yield


def _waited(source: str, started: float, limit: float) -> SourceBusy:
    return SourceBusy(
        f"another batch of source {source} has been storing records for {time.monotonic() - started:.0f} s; "
        "this unit was kept and registered but not stored yet",
        remedy="send the unit again later: the same unit is recognised and finished (`sciti ingest` "
        "also finishes such batches first)",
        details={"source": source, "waited_seconds": round(limit)},
    )


def _backoff() -> Iterator[float]:
    delay = _POLL_FIRST
    while True:
        yield delay
        delay = min(delay * 2, _POLL_MAX)


@contextmanager
def _file_lock(settings: Settings, source: str, limit: float) -> Iterator[None]:
    folder = Path(settings.home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"source-{_name(source)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started, pauses = time.monotonic(), _backoff()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= limit:
                    raise _waited(source, started, limit) from None
                time.sleep(next(pauses))
        _log_wait(source, started)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


@contextmanager
def _advisory_lock(url: str, source: str, limit: float) -> Iterator[None]:
    key = advisory_key(source)
    conn = get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT")
    locked = False
    try:
        started, pauses = time.monotonic(), _backoff()
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            if time.monotonic() - started >= limit:
                raise _waited(source, started, limit)
            time.sleep(next(pauses))
        locked = True
        _log_wait(source, started)
        yield
    finally:
        try:
            if locked:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        except Exception:  # the session's end releases it: never pool a connection that may hold it
            conn.invalidate()
        conn.close()


def _log_wait(source: str, started: float) -> None:
    waited = time.monotonic() - started
    if waited >= 1.0:
        log.info("waited %.1f s for another batch of source %s", waited, source)
