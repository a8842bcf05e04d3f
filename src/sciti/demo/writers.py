"""Streaming writers: every feed file is opened once and appended to chunk by chunk.

Only the current chunk is ever in memory. Output is byte-for-byte deterministic for a seed: no
timestamps of the run, no dict-order or hash-order dependence, fixed float formatting.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv


def _arrow(values: Any, type_: pa.DataType) -> pa.Array:
    """A column as an Arrow array of ``type_``.

    numpy unicode arrays go through object arrays: Arrow converts those about ten times faster
    than fixed-width UTF-32 ones, and a chunk has millions of such cells.
    """
    if isinstance(values, pa.Array | pa.ChunkedArray):
        arr = values
    elif isinstance(values, np.ndarray) and values.dtype.kind == "U":
        arr = pa.array(values.astype(object), type=pa.string())
    else:
        arr = pa.array(values)
    return arr if arr.type == type_ else arr.cast(type_)


class CsvSink:
    """A CSV file written from Arrow tables with one fixed schema (header written once)."""

    def __init__(self, path: Path, schema: pa.Schema):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.schema, self.rows = path, schema, 0
        # A file already there was started by an earlier stage (merged chunk parts): append to it.
        append = path.exists()
        self._fh = path.open("ab" if append else "wb")
        options = pacsv.WriteOptions(quoting_style="needed", include_header=not append)
        self._writer = pacsv.CSVWriter(self._fh, schema, write_options=options)

    def write(self, columns: dict[str, Any]) -> None:
        table = pa.table({f.name: _arrow(columns[f.name], f.type) for f in self.schema}, schema=self.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._fh.close()


def _cell(value: Any) -> Any:
    """Booleans as ``true``/``false`` (as Arrow's CSV writer does), None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return value


class RowSink:
    """A CSV file written row by row (small feeds and ground-truth tables)."""

    def __init__(self, path: Path, header: list[str]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.header, self.rows = path, header, 0
        append = path.exists()
        self._fh = path.open("a" if append else "w", encoding="utf-8", newline="")
        self._w = csv.writer(self._fh, lineterminator="\n")
        if not append:
            self._w.writerow(header)

    def write(self, row: dict[str, Any]) -> None:
        self._w.writerow([_cell(row.get(k)) for k in self.header])
        self.rows += 1

    def close(self) -> None:
        self._fh.close()


class JsonlSink:
    """JSON Lines: one message per line, keys in the order given (as a broker would carry them)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.rows = path, 0
        self._fh = path.open("ab")

    def write(self, obj: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(obj) + b"\n")
        self.rows += 1

    def close(self) -> None:
        self._fh.close()


def _append(fin: BinaryIO, dst: Path) -> None:
    """Append the rest of ``fin`` to ``dst``: in the kernel where it can (copy_file_range), as a
    large world merges tens of gigabytes of parts; by reading and writing otherwise."""
    start, size = fin.tell(), os.fstat(fin.fileno()).st_size
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        at = os.lseek(fd, 0, os.SEEK_END)
        try:
            while start < size:
                done = os.copy_file_range(fin.fileno(), fd, size - start, start, at)
                if done == 0:
                    break
                start, at = start + done, at + done
            if start >= size:
                return
        except (AttributeError, OSError):  # no copy_file_range (platform or file system)
            pass
        os.lseek(fd, at, os.SEEK_SET)
        fin.seek(start)
        with os.fdopen(os.dup(fd), "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    finally:
        os.close(fd)


class Sinks:
    """All open files of one generation run, closed together; counts rows per feed for the manifest."""

    def __init__(self, root: Path):
        self.root = root
        self._open: dict[str, CsvSink | RowSink | JsonlSink] = {}
        self.counts: dict[str, int] = {}

    def csv(self, rel: str, schema: pa.Schema) -> CsvSink:
        if rel not in self._open:
            self._open[rel] = CsvSink(self.root / rel, schema)
        return self._open[rel]  # type: ignore[return-value]

    def rows(self, rel: str, header: list[str]) -> RowSink:
        if rel not in self._open:
            self._open[rel] = RowSink(self.root / rel, header)
        return self._open[rel]  # type: ignore[return-value]

    def jsonl(self, rel: str) -> JsonlSink:
        if rel not in self._open:
            self._open[rel] = JsonlSink(self.root / rel)
        return self._open[rel]  # type: ignore[return-value]

    def count(self, feed: str, n: int) -> None:
        self.counts[feed] = self.counts.get(feed, 0) + n

    def close(self) -> None:
        for rel, sink in self._open.items():
            sink.close()
            self.counts[rel] = self.counts.get(rel, 0) + sink.rows
        self._open.clear()

    def merge(self, part: Path, counts: dict[str, int]) -> None:
        """Append a chunk's part folder (written by a worker with its own Sinks) to the output.

        Text tables are appended in call order (a part's header line is dropped when the file
        exists already); whole files (XML messages, EDIFACT interchanges) are moved. Merging parts
        in chunk order gives the same bytes as writing the chunks in one process.
        """
        for src in sorted(p for p in part.rglob("*") if p.is_file()):
            rel = src.relative_to(part)
            if rel.as_posix() in self._open:  # flush what this process wrote there so far
                sink = self._open.pop(rel.as_posix())
                sink.close()
                self.counts[rel.as_posix()] = self.counts.get(rel.as_posix(), 0) + sink.rows
            dst = self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix in (".csv", ".jsonl"):
                with src.open("rb") as fin:
                    if src.suffix == ".csv" and dst.exists() and dst.stat().st_size:
                        fin.readline()
                    _append(fin, dst)
                src.unlink()
            else:
                src.replace(dst)
        for key, n in counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        shutil.rmtree(part, ignore_errors=True)
