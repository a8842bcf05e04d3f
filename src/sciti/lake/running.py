"""A running lake query: its time limit, and stopping it from another thread (decision 0098).

A query is stopped by ``connection.interrupt()``: when its time limit passes, when the server shuts
down (``stop_running_queries``), or when its client disconnects (``StopSignal``, decision 0109).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import duckdb
import pyarrow as pa

from sciti.lake.errors import QueryError

if TYPE_CHECKING:
    from sciti.lake.query import Limits

T = TypeVar("T")
TABLES_REMEDY = "address tables as zone.name (e.g. std.declarations); list them with `sciti tables`"
_MISSING_TABLE = re.compile(r'Table with name "?([^"\s]+)"? does not exist')


class QueryTimeout(QueryError):
    """The query ran past its time limit and was stopped."""

    code = "query_timeout"
    http_status = 422


class QueryStopped(QueryError):
    """The query was stopped because the server is shutting down (``details["stopped_by"]``)."""

    code = "query_stopped"
    http_status = 503


class ClientDisconnected(QueryStopped):
    """The query was stopped because the client that asked for it disconnected (decision 0109).

    Nobody reads the answer: 499, the status web servers log for a request its client closed.
    """

    code = "client_disconnected"
    http_status = 499


# A stopped query's connection is interrupted again this often, for at most this long.
_INTERRUPT_EVERY, _INTERRUPT_FOR = 0.05, 10.0


class RunningQuery:
    """One query's result stream and the connection under it, watched by its time limit.

    ``reader`` yields the result's batches; ``close()`` ends the query and frees the connection
    (also when the reader is exhausted); ``stop()`` interrupts it from any thread.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, limits: Limits | None):
        self._conn = conn
        self._lock = threading.Lock()
        self._closed = False
        self.stopped_by: str | None = None  # "time", "shutdown" or "client"
        self.seconds = None if limits is None else limits.seconds
        self._timer: threading.Timer | None = None
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, self.stop, args=("time",))
            self._timer.daemon = True
            self._timer.start()
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        self.reader: pa.RecordBatchReader = pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))

    def stop(self, why: str = "shutdown") -> None:
        """Interrupt the query (it answers QueryTimeout, QueryStopped or ClientDisconnected);
        harmless once closed."""
        with self._lock:
            if self._closed or self.stopped_by is not None:
                return
            self.stopped_by = why
            self._conn.interrupt()
        # DuckDB interrupts only a statement that is running: one that was about to start when the
        # signal came would run to its end. Repeat the interrupt until the query is closed.
        threading.Thread(target=self._interrupt_until_closed, daemon=True).start()

    def _interrupt_until_closed(self) -> None:
        for _ in range(int(_INTERRUPT_FOR / _INTERRUPT_EVERY)):
            time.sleep(_INTERRUPT_EVERY)
            with self._lock:
                if self._closed:
                    return
                self._conn.interrupt()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._conn.close()
        with _RUNNING_LOCK:
            _RUNNING.discard(self)

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the connection; DuckDB's errors as QueryError, an interrupt as what stopped it."""
        self._check()
        try:
            return fn()
        except duckdb.Error as exc:
            self._check()
            raise query_error(exc) from None

    def _check(self) -> None:
        if self.stopped_by == "time":
            raise QueryTimeout(
                f"the query ran longer than {self.seconds:g} s and was stopped",
                remedy="narrow it (a WHERE on a date, fewer joins or columns) or ask an administrator "
                "for a longer limit (sql_timeout_seconds)",
                details={"limit_seconds": self.seconds},
            )
        if self.stopped_by == "shutdown":
            raise QueryStopped(
                "the query was stopped because the server is shutting down",
                remedy="run it again once the server is back",
                details={"stopped_by": "shutdown"},
            )
        if self.stopped_by == "client":
            raise ClientDisconnected(
                "the query was stopped because its client disconnected before the answer came",
                remedy="run it again and keep the connection open until it answers; a client's "
                "own timeout shorter than the query ends it too",
                details={"stopped_by": "client_disconnected"},
            )


class StopSignal:
    """Stops one query from another thread, whether it has started yet or not.

    The API and web SQL endpoints run the query in a worker thread and watch the HTTP connection;
    when the client disconnects they call ``stop("client")``. Given to :func:`open_reader`, the
    query is interrupted at once, or, if the signal came first, stops before it runs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: RunningQuery | None = None
        self.why: str | None = None

    def watch(self, running: RunningQuery) -> None:
        with self._lock:
            self._running, why = running, self.why
        if why is not None:
            running.stop(why)

    def stop(self, why: str = "client") -> None:
        with self._lock:
            if self.why is not None:
                return
            self.why, running = why, self._running
        if running is not None:  # outside our lock: RunningQuery.stop takes its own
            running.stop(why)


_RUNNING: set[RunningQuery] = set()
_RUNNING_LOCK = threading.Lock()


def stop_running_queries() -> int:
    """Interrupt every watched query still running (server shutdown); returns how many.

    Each answers QueryStopped to its caller, which audits it; a stopped query frees its thread at
    once, so the server does not wait for it to finish on its own.
    """
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for item in running:
        item.stop("shutdown")
    return len(running)


def query_error(exc: duckdb.Error) -> QueryError:
    """One line a person understands, from DuckDB's multi-line message."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.CatalogException):
        # Not DuckDB's "because schema std does not exist": the zone exists, the table does not.
        missing = _MISSING_TABLE.search(first)
        if missing:
            return QueryError(f"table {missing[1]} does not exist", remedy=TABLES_REMEDY)
        return QueryError(first, remedy=TABLES_REMEDY)
    if isinstance(exc, duckdb.ParserException):
        return QueryError(first, remedy="check the SQL syntax (DuckDB dialect)")
    if isinstance(exc, duckdb.PermissionException):
        return QueryError(
            first, remedy="queries read lake tables only, not files; address tables as zone.name"
        )
    if isinstance(exc, duckdb.BinderException):
        return QueryError(first, remedy="check column names with DESCRIBE zone.table")
    return QueryError(first)
