"""Table-style formats (CSV, Parquet): stage a unit's rows for the mapping pass.

Staging normalises header names to snake_case so "Declaration ID", "declaration id" and
"DECLARATION_ID" all become ``declaration_id``. A well-formed CSV is parsed by Arrow's
multi-threaded reader; any other CSV, and Parquet, is staged by DuckDB into table ``src``, which
reports rows that cannot be read (wrong column count, unterminated quotes, invalid bytes) as
``Rejected`` with the physical line DuckDB saw them on. Every staged row keeps its ordinal
(``__row`` in ``Staged.source``); the mapping step turns ordinals back into locators with
``Staged.locator_sql``.

A line longer than ``MAX_LINE_BYTES`` is never handed to a reader: neither reads it reliably
(Arrow gives up, DuckDB skips a line longer than its buffer without a word). The line count pass
finds such lines; they are blanked in a copy of the unit (so every other line keeps its number)
and quarantined with their line and length, unread (decision 0086).
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sciti.acquire.errors import AcquireError, ConnectorError
from sciti.acquire.items import Rejected

UTF8_NAMES = {"utf-8", "utf-8-sig"}
READ_CHUNK = 1 << 24
# The longest CSV line read (16 MiB). Not below READ_CHUNK: the line count pass then finds every
# longer line at a chunk boundary. DuckDB's buffer holds two such lines.
MAX_LINE_BYTES = 1 << 24
DUCKDB_BUFFER = 2 * MAX_LINE_BYTES


@dataclass(frozen=True)
class LongLine:
    """A line over ``MAX_LINE_BYTES``: its number, where it starts (-1 when unknown) and its length
    in bytes without the line end."""

    line: int
    start: int
    size: int


def _size_text(size: int) -> str:
    return f"{size / (1 << 20):.3g} MB ({size} bytes)"


def long_line_reason(line: int, size: int) -> str:
    return (
        f"line {line} is {_size_text(size)} long; lines of at most {_size_text(MAX_LINE_BYTES)} are "
        "read, so it was not read: send such a value as a document, not inside a CSV line"
    )


def normalise_name(name: str) -> str:
    """``"Declaration ID"`` -> ``declaration_id``: case, spaces and punctuation folded away."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = re.sub(r"[^\w]+", "_", text).strip("_")
    return text or "column"


def normalise_names(names: list[str]) -> list[str]:
    """Normalise and make unique (a second ``amount`` becomes ``amount_2``)."""
    out: list[str] = []
    for name in names:
        base = candidate = normalise_name(name)
        n = 2
        while candidate in out:
            candidate, n = f"{base}_{n}", n + 1
        out.append(candidate)
    return out


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


TABLE_SOURCE = "(SELECT rowid AS __row, * FROM src)"
ARROW_SOURCE = "src_arrow"  # a CSV parsed by Arrow, registered in the connection under this name


@dataclass
class Staged:
    """Rows of one unit, ready for the mapping pass: ``source`` is a relation of the rows with
    their ordinal ``__row`` (the staged table ``src``, or a CSV parsed by Arrow)."""

    rows: int
    columns: list[str]
    rejects: list[Rejected] = field(default_factory=list)  # rows that never reached ``src``
    rejected_rows: dict[int, Rejected] = field(default_factory=dict)  # staged rows known to be bad
    locator_sql: Callable[[str], str] = lambda col: col  # SQL expr of a row ordinal -> locator text
    locate: Callable[[int], str] = str  # the same in Python, for the few rejected rows
    raw_sql: Callable[[], str] | None = None  # SQL re-serialising a ``src`` row as source text
    sparse: bool = False  # rows name their own keys (JSON): an absent key is a null, not a wrong file
    source: str = TABLE_SOURCE
    all_text: bool = False  # every source column is text (CSV)
    suspect_sql: str | None = None  # rows the fast path must leave to the model (transcoded bad lines)
    line_of: Callable[[int], int] | None = None  # row ordinal -> physical line, when lines are exact
    arrow: pa.Table | None = None  # the rows, when a CSV was parsed by Arrow (row k at position k)
    # Columns known to hold no empty text and no value starting or ending with a blank (so with
    # nothing the model would trim): their text needs no per-row clean-up.
    plain_columns: frozenset[str] = frozenset()

    @property
    def received(self) -> int:
        return self.rows + len(self.rejects)


def _count(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute("SELECT count(*) FROM src").fetchall()  # fetchall: leaves no open result
    return int(found[0][0]) if found else 0


def _codec(options: dict[str, Any]) -> str:
    name = str(options.get("encoding") or "utf-8")
    try:
        return codecs.lookup(name).name
    except LookupError:  # the connector's mistake, not the file's: the batch fails, nothing is quarantined
        raise ConnectorError(
            f"unknown encoding {name!r} in the connector options",
            remedy="use a Python codec name such as utf-8, gb18030, big5, cp1252",
        ) from None


def _transcode(path: Path, target: Path, encoding: str) -> tuple[dict[int, str], list[LongLine]]:
    """Write ``path`` as UTF-8 to ``target`` line by line; return {line: reason} for undecodable
    lines, and the lines too long to read.

    A bad line is written with replacement characters (so line numbers stay those of the source)
    and reported, so it is quarantined instead of being stored as garbage. A line too long to read
    is written empty, without being held in memory.
    """
    bad: dict[int, str] = {}
    long: list[LongLine] = []
    with path.open("rb") as src, target.open("wb") as out:
        number = 0
        while line := src.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                size = len(line)
                while line and not line.endswith(b"\n"):
                    line = src.readline(READ_CHUNK)
                    size += len(line)
                ended = line.endswith(b"\n")
                long.append(LongLine(number, -1, size - ended - (line.endswith(b"\r\n") if ended else 0)))
                out.write(b"\n" if ended else b"")
                continue
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as exc:
                byte = line[exc.start : exc.start + 1].hex()
                bad[number] = f"bytes starting 0x{byte} at column {exc.start + 1} are not valid {encoding}"
                text = line.decode(encoding, errors="replace")
            if number == 1:
                text = text.lstrip("\ufeff")
            out.write(text.encode("utf-8"))
    return bad, long


def _scan_lines(path: Path) -> tuple[int, list[LongLine]]:
    """The number of lines and those longer than ``MAX_LINE_BYTES``, in one pass of READ_CHUNK
    reads. A line within one chunk is shorter than the limit, so only the line running across
    chunk boundaries (from the last line end of a chunk to the first of a later one) is measured."""
    count = start = base = 0  # lines ended so far; where the current line starts; bytes read
    long: list[LongLine] = []
    buf = bytearray(READ_CHUNK)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            ends = buf.count(b"\n", 0, n)
            if ends:
                end = base + buf.find(b"\n", 0, n)
                if end - start > MAX_LINE_BYTES:
                    long.append(LongLine(count + 1, start, end - start))
                count += ends
                start = base + buf.rfind(b"\n", 0, n) + 1
            base += n
    if start < base:  # a last line without a line end
        count += 1
        if base - start > MAX_LINE_BYTES:
            long.append(LongLine(count, start, base - start))
    return count, long


def _blank_lines(path: Path, target: Path, long: list[LongLine]) -> None:
    """Copy ``path`` to ``target`` with each long line emptied (its line end kept, so the lines
    after it keep their numbers), streaming: a long line is skipped, never read into memory."""
    with path.open("rb") as src, target.open("wb") as out:
        pos = 0
        for item in long:
            _copy_range(src, out, item.start - pos)
            src.seek(item.start + item.size)
            pos = item.start + item.size
        _copy_range(src, out, None)


def _copy_range(src: Any, out: Any, size: int | None) -> None:
    while size is None or size > 0:
        chunk = src.read(READ_CHUNK if size is None else min(size, READ_CHUNK))
        if not chunk:
            return
        out.write(chunk)
        if size is not None:
            size -= len(chunk)


def _header(path: Path, delimiter: str, quote: str) -> tuple[str, list[str]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline(MAX_LINE_BYTES + 1)
    if len(first) > MAX_LINE_BYTES and not first.endswith("\n"):
        raise AcquireError(
            f"the header line is longer than {_size_text(MAX_LINE_BYTES)}; nothing in the file was read",
            remedy="check that the file is a CSV with a header line",
        )
    if not first.strip():
        raise AcquireError("the file is empty or has no header line", remedy="send a CSV with a header row")
    names = next(csv.reader(io.StringIO(first), delimiter=delimiter, quotechar=quote))
    return first.rstrip("\r\n"), names


def stage_csv(
    con: duckdb.DuckDBPyConnection, path: Path, *, unit: str, options: dict[str, Any], work: Path
) -> Staged:
    """Stage a CSV file. ``options``: encoding, delimiter, quote, escape.

    A well-formed file (every row has the header's columns, valid UTF-8, one line per row) is
    parsed by Arrow's multi-threaded CSV reader into memory with each row's ordinal; the mapping
    pass then scans it in parallel. Any other file is staged by DuckDB's reader into table ``src``,
    which keeps unreadable rows aside with their line and DuckDB's reason (``rejects_err``).
    A non-UTF-8 file is transcoded first; its undecodable lines are left to the model and then
    quarantined with the byte and line.
    """
    encoding = _codec(options)
    delimiter = str(options.get("delimiter", ","))
    quote = str(options.get("quote", '"'))
    escape = str(options.get("escape", quote))
    bad_lines: dict[int, str] = {}
    long: list[LongLine] = []
    if encoding not in UTF8_NAMES:
        utf8 = work / (path.name + ".utf8")
        bad_lines, long = _transcode(path, utf8, encoding)
        path = utf8
    header_line, header = _header(path, delimiter, quote)
    columns = normalise_names(header)
    staged = None
    with ThreadPoolExecutor(1) as pool:  # count lines while Arrow parses (both release the GIL)
        counting = pool.submit(_scan_lines, path)
        plain_file = len(delimiter) == 1 and len(quote) == 1 and escape == quote and not long
        table = _read_arrow(path, columns, delimiter, quote) if plain_file else None
        lines, found = counting.result()
    if found:  # lines too long to read: blank them in a copy and read that (never the Arrow table)
        table, long = None, found
        blanked = work / (path.name + ".lines")
        _blank_lines(path, blanked, long)
        path = blanked
    if table is not None and lines == 1 + table.num_rows:
        ordinals = pa.array(np.arange(table.num_rows, dtype=np.int64))
        table = table.append_column("__row", ordinals)
        con.register(ARROW_SOURCE, table)
        staged = Staged(rows=table.num_rows, columns=columns, source=f"(SELECT * FROM {ARROW_SOURCE})")
        staged.arrow = table
        staged.plain_columns = frozenset(c for c in columns if _plain(table.column(c)))
        _locate_rows(staged, unit, [], lines)
    if staged is None:
        staged = _stage_duckdb(con, path, unit, header_line, columns, lines, delimiter, quote, escape, long)
    staged.raw_sql = lambda: _csv_line_sql(header_line, columns, delimiter, quote)
    staged.all_text = True
    if bad_lines:  # a bad line holds replacement characters: never certain, so the model sees it
        cells = ", ".join(f"coalesce({quote_ident(c)}, '')" for c in columns)
        staged.suspect_sql = f"contains(concat({cells}), chr(65533))"
        _mark_bad_lines(staged, unit, encoding, bad_lines)
    return staged


def _read_arrow(path: Path, columns: list[str], delimiter: str, quote: str) -> pa.Table | None:
    """Every row as text (empty -> null, as DuckDB reads it), or None when any row is not plain:
    a wrong number of cells, a value spanning lines, a blank line or bytes that are not UTF-8."""
    odd: list[Any] = []

    def on_invalid(row: Any) -> str:
        odd.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char=quote,
                double_quote=True,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
                check_utf8=True,
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    return None if odd else table


def _plain(column: pa.ChunkedArray) -> bool:
    """Whether every value of a text column read by Arrow is non-empty and starts and ends with a
    printable ASCII character (no trim character is one). Read from the offsets and bytes of the
    Arrow buffers: a few milliseconds for a million values."""
    for chunk in column.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        if offsets_buf is None or chunk.null_count == len(chunk):
            continue
        offsets = np.frombuffer(offsets_buf, dtype=np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
        starts, ends = offsets[:-1], offsets[1:]
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        if ((ends - starts)[valid] == 0).any() or data_buf is None:
            return False  # an empty text value (a null has none)
        data = np.frombuffer(data_buf, dtype=np.uint8)
        first, last = data[starts[valid]], data[ends[valid] - 1]
        if ((first < 0x21) | (first > 0x7E) | (last < 0x21) | (last > 0x7E)).any():
            return False
    return True


def _stage_duckdb(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    unit: str,
    header_line: str,
    columns: list[str],
    lines: int,
    delimiter: str,
    quote: str,
    escape: str,
    long: tuple[LongLine, ...] | list[LongLine] = (),
) -> Staged:
    """Stage with DuckDB's reader into ``src``; unreadable rows are reported with their line.
    ``long``: lines blanked in ``path`` because they are too long to read."""
    spec = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    try:
        con.execute(
            f"""CREATE OR REPLACE TABLE src AS SELECT * FROM read_csv({sql_str(str(path))},
                header=true, auto_detect=false, columns={spec}, delim={sql_str(delimiter)},
                quote={sql_str(quote)}, escape={sql_str(escape)}, strict_mode=true, encoding='utf-8',
                max_line_size={MAX_LINE_BYTES}, buffer_size={DUCKDB_BUFFER},
                store_rejects=true, rejects_table='rejects_err', rejects_scan='rejects_scan',
                compression='none')"""
        )
        rows = _count(con)
        # DuckDB may report one line several times (a column count per attempt): one row per line.
        found = con.execute(
            r"""SELECT line, list(DISTINCT error_type), min(column_name), min(error_message),
                      max(TRY_CAST(regexp_extract(error_message, 'Actual Size:\s*(\d+)', 1) AS BIGINT)),
                      min(csv_line) FILTER (WHERE error_type <> 'LINE SIZE OVER MAXIMUM')
               FROM rejects_err GROUP BY line ORDER BY line"""
        ).fetchall()
    except duckdb.Error as exc:
        raise AcquireError(
            f"cannot read {unit} as CSV: {exc}", remedy="check the file and the connector options"
        ) from None
    staged = Staged(rows=rows, columns=columns)
    bad = [_unreadable(row, unit, header_line, len(columns), delimiter, quote) for row in found]
    for x in long:  # blanked in ``path``: DuckDB skips an empty line without a word
        reason = long_line_reason(x.line, x.size)
        bad.append(_Bad(Rejected(f"{unit}:line {x.line}", reason, details={"line_bytes": x.size}), x.line, 1))
    _locate_rows(staged, unit, sorted(bad, key=lambda b: b.line), lines)
    return staged


@dataclass
class _Bad:
    """A row no reader could read: its quarantine entry, first physical line and lines taken."""

    rejected: Rejected
    line: int
    span: int


def _unreadable(
    found: tuple[Any, ...], unit: str, header_line: str, width: int, delimiter: str, quote: str
) -> _Bad:
    """One line DuckDB rejected, with one plain sentence saying why."""
    line, types, col, message, size, text = found
    text = (text or "").strip("\r\n")  # DuckDB includes blank lines skipped before the row
    field = normalise_name(col) if col else None
    if "LINE SIZE OVER MAXIMUM" in types:  # a quoted value spanning lines made the row too long
        reason, field = long_line_reason(line, int(size or 0)), None
    elif "UNQUOTED VALUE" in types or "UNTERMINATED QUOTES" in types:
        reason = (
            f"line {line} has a quote that is not closed, or text after a closing quote, in column "
            f"{field or '?'}: a quoted value must start and end with the quote"
        )
    elif "INVALID ENCODING" in types or "INVALID UNICODE" in types:
        reason = f"line {line} holds bytes that are not valid UTF-8"
    elif "MISSING COLUMNS" in types or "TOO MANY COLUMNS" in types:
        cells = _cells(text, delimiter, quote, message)
        reason, field = f"line {line} has {cells} columns; the header has {width}", None
    else:
        reason = f"line {line} cannot be read as CSV: {message}"
    raw = header_line + "\n" + text if text else None
    # The lines a row took; unknown for a row too long (DuckDB keeps 10,000 characters of it), so
    # the rows after it are then located by row number.
    return _Bad(Rejected(f"{unit}:line {line}", reason, field, raw), line, text.count("\n") + 1)


def _cells(text: str, delimiter: str, quote: str, message: str) -> str:
    """How many cells a rejected line has: counted from its text, else taken from DuckDB's message."""
    try:
        records = list(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote))
        if len(records) == 1:
            return str(len(records[0]))
    except (csv.Error, ValueError):
        pass
    found = re.search(r"Found:\s*(\d+)", message or "")
    return found.group(1) if found else "a different number of"


def _locate_rows(staged: Staged, unit: str, bad: list[_Bad], lines: int) -> None:
    """Rejects with their lines, and the physical line of every staged row (``locate``/``locator_sql``)."""
    staged.rejects = [b.rejected for b in bad]
    # Physical line of staged row k: k + 2 + lines taken by rejected rows before it. Exact unless
    # quoted values span lines; then we fall back to row numbers rather than print a wrong line.
    first_k: list[int] = []
    offsets: list[int] = []
    offset = 0
    for b in bad:
        first_k.append(b.line - 2 - offset)
        offset += b.span
        offsets.append(offset)
    exact = lines == 1 + staged.rows + offset

    def line_of(k: int) -> int:
        i = bisect.bisect_right(first_k, k)
        return k + 2 + (offsets[i - 1] if i else 0)

    def locate(k: int) -> str:
        return f"{unit}:line {line_of(k)}" if exact else f"{unit}#row={k + 1}"

    def locator_sql(col: str) -> str:
        if not exact:
            return f"({sql_str(unit + '#row=')} || ({col} + 1))"
        case = "".join(
            f" WHEN {col} >= {k} THEN {o}" for k, o in reversed(list(zip(first_k, offsets, strict=True)))
        )
        extra = f"(CASE{case} ELSE 0 END)" if case else "0"
        return f"({sql_str(unit + ':line ')} || ({col} + 2 + {extra}))"

    staged.locate, staged.locator_sql = locate, locator_sql
    staged.line_of = line_of if exact else None


def _mark_bad_lines(staged: Staged, unit: str, encoding: str, bad_lines: dict[int, str]) -> None:
    """Undecodable lines of a transcoded file -> the rows they became (quarantined with the reason)."""
    line_of = staged.line_of
    for line, reason in bad_lines.items():
        # Lines of the transcoded file keep the source numbering; rows are in line order.
        row = None
        if line_of is not None:
            k = bisect.bisect_left(range(staged.rows), line, key=line_of)
            row = k if k < staged.rows and line_of(k) == line else None
        if row is not None:
            staged.rejected_rows[row] = Rejected(locator=f"{unit}:line {line}", reason=reason, field=None)
        elif not any(r.locator == f"{unit}:line {line}" for r in staged.rejects) and line > 1:
            raise AcquireError(
                f"{unit} is not valid {encoding} at line {line}: {reason}",
                remedy="check the declared encoding of the connector",
            )


def _csv_line_sql(header_line: str, columns: list[str], delimiter: str, quote: str) -> str:
    """SQL writing a staged row back as CSV text under its header, quoting values where needed."""
    special = "[" + re.escape(delimiter + quote) + "\\r\\n]"
    cells = []
    for c in columns:
        col = quote_ident(c)
        quoted = (
            f"{sql_str(quote)} || replace({col}, {sql_str(quote)}, {sql_str(quote * 2)}) || {sql_str(quote)}"
        )
        cells.append(
            f"CASE WHEN {col} IS NULL THEN '' WHEN regexp_matches({col}, {sql_str(special)}) "
            f"THEN {quoted} ELSE {col} END"
        )
    return f"{sql_str(header_line + chr(10))} || concat_ws({sql_str(delimiter)}, {', '.join(cells)})"


def stage_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, *, unit: str, options: dict[str, Any], work: Path
) -> Staged:
    """Stage a Parquet file; column names are normalised like CSV headers."""
    try:
        names = [
            r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(str(path))})").fetchall()
        ]
        columns = normalise_names(names)
        select = ", ".join(
            f"{quote_ident(n)} AS {quote_ident(c)}" for n, c in zip(names, columns, strict=True)
        )
        con.execute(f"CREATE OR REPLACE TABLE src AS SELECT {select} FROM read_parquet({sql_str(str(path))})")
        rows = _count(con)
    except duckdb.Error as exc:
        raise AcquireError(
            f"cannot read {unit} as Parquet: {exc}", remedy="check that the file is complete"
        ) from None
    staged = Staged(rows=rows, columns=columns)
    staged.locate = lambda k: f"{unit}#row={k + 1}"
    staged.locator_sql = lambda col: f"({sql_str(unit + '#row=')} || ({col} + 1))"
    return staged
