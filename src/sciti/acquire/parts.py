"""How a unit's part is read: the one choice of reader that the runner and the quarantine share.

A part (a file, a zip member, a re-submitted text) is read by the connector's format: table-style
(CSV, Parquet, JSON lines with ``outputs``) into DuckDB as ``Staged`` rows for the mapping pass,
record-style (XML, EDIFACT, canonical JSON lines) as ``Parsed`` / ``Rejected`` units. Rows handed
over by ``Runner.ingest_rows`` are kept as Parquet, so Parquet bytes are read as Parquet whatever
the connector's format. The quarantine counts a correction's records with the same readers
(``records_in``), so what it expects is what the runner will count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sciti.acquire.connector import Connector
from sciti.acquire.errors import AcquireError, ConnectorError
from sciti.acquire.formats import jsonl, tabular
from sciti.acquire.formats.tabular import Staged
from sciti.acquire.items import Rejected
from sciti.acquire.registry import FORMATS, FormatContext
from sciti.settings import Settings

PARQUET_MAGIC = b"PAR1"
DUCKDB_MEMORY = "2GB"  # per ingest; DuckDB spills to the work folder beyond it


@dataclass
class TablePart:
    """A table-style part: its rows staged in ``con`` for the mapping pass."""

    con: duckdb.DuckDBPyConnection
    staged: Staged


@dataclass
class RecordPart:
    """A record-style part: its units as the reader yields them (a reader failure half-way is one
    ``Rejected`` for the rest of the part)."""

    items: Iterator[Any]


def part_format(connector: Connector, path: Path) -> str:
    """The format a part is read as: the connector's, or Parquet for rows kept as Parquet."""
    fmt = connector.format
    with path.open("rb") as fh:
        if fh.read(4) == PARQUET_MAGIC and fmt != "parquet":
            fmt = "parquet"  # rows handed over by ingest_rows are kept as Parquet
    return fmt


@contextmanager
def read_part(
    settings: Settings, connector: Connector, path: Path, name: str, work: Path
) -> Iterator[TablePart | RecordPart]:
    """Read the part at ``path`` (named ``name`` in locators) with the connector's reader; a
    table-style part's DuckDB connection lives as long as the block (it spills to ``work``)."""
    work.mkdir(parents=True, exist_ok=True)
    fmt = part_format(connector, path)
    if connector.outputs:
        stager = {"csv": tabular.stage_csv, "parquet": tabular.stage_parquet, "jsonl": jsonl.stage}.get(fmt)
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
            staged = stager(con, path, unit=name, options=connector.options, work=work)
            yield TablePart(con, staged)
        finally:
            con.close()
        return
    ctx = FormatContext(settings=settings, connector=connector)
    items = FORMATS[fmt](path.read_bytes(), unit=name, options=connector.options, ctx=ctx)
    yield RecordPart(guarded(items, name))


def guarded(items: Any, unit: str) -> Iterator[Any]:
    """A reader that fails half-way quarantines the rest of its unit instead of crashing the batch."""
    try:
        yield from items
    except (AcquireError, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure on bad input becomes a reason
        yield Rejected(locator=unit, reason=f"the reader stopped on this unit: {type(exc).__name__}: {exc}")


def count_records(settings: Settings, connector: Connector, path: Path, name: str, work: Path) -> int:
    """How many records the runner counts as received in one part, nothing stored."""
    with read_part(settings, connector, path, name, work) as part:
        if isinstance(part, TablePart):
            return part.staged.received
        return sum(1 for _ in part.items)
