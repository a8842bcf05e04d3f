"""Table-style formats (CSV, Parquet): stage a unit's rows into DuckDB table ``src``.

Staging reads the file with DuckDB (parallel, columnar), normalises header names to snake_case so
"Declaration ID", "declaration id" and "DECLARATION_ID" all become ``declaration_id``, and reports
rows that cannot be read (wrong column count, unterminated quotes, invalid bytes) as ``Rejected``
with the physical line DuckDB saw them on. Every staged row keeps its ordinal as ``rowid``; the
mapping step turns ordinals back into locators with ``Staged.locator_sql``.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sciti.acquire.errors import AcquireError
from sciti.acquire.items import Rejected

UTF8_NAMES = {"utf-8", "utf-8-sig"}
READ_CHUNK = 1 << 24


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


@dataclass
class Staged:
    """Rows of one unit staged in DuckDB table ``src`` (row ordinal = ``rowid``)."""

    rows: int
    columns: list[str]
    rejects: list[Rejected] = field(default_factory=list)  # rows that never reached ``src``
    rejected_rows: dict[int, Rejected] = field(default_factory=dict)  # staged rows known to be bad
    locator_sql: Callable[[str], str] = lambda col: col  # SQL expr of a row ordinal -> locator text
    locate: Callable[[int], str] = str  # the same in Python, for the few rejected rows
    raw_sql: Callable[[], str] | None = None  # SQL re-serialising a ``src`` row as source text
    sparse: bool = False  # rows name their own keys (JSON): an absent key is a null, not a wrong file

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
    except LookupError:
        raise AcquireError(
            f"unknown encoding {name!r} in the connector options",
            remedy="use a Python codec name such as utf-8, gb18030, big5, cp1252",
        ) from None


def _transcode(path: Path, target: Path, encoding: str) -> dict[int, str]:
    """Write ``path`` as UTF-8 to ``target`` line by line; return {line: reason} for undecodable lines.

    A bad line is written with replacement characters (so line numbers stay those of the source)
    and reported, so it is quarantined instead of being stored as garbage.
    """
    bad: dict[int, str] = {}
    with path.open("rb") as src, target.open("wb") as out:
        for number, line in enumerate(src, start=1):
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as exc:
                byte = line[exc.start : exc.start + 1].hex()
                bad[number] = f"bytes starting 0x{byte} at column {exc.start + 1} are not valid {encoding}"
                text = line.decode(encoding, errors="replace")
            if number == 1:
                text = text.lstrip("\ufeff")
            out.write(text.encode("utf-8"))
    return bad


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def _header(path: Path, delimiter: str, quote: str) -> tuple[str, list[str]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise AcquireError("the file is empty or has no header line", remedy="send a CSV with a header row")
    names = next(csv.reader(io.StringIO(first), delimiter=delimiter, quotechar=quote))
    return first.rstrip("\r\n"), names


def stage_csv(
    con: duckdb.DuckDBPyConnection, path: Path, *, unit: str, options: dict[str, Any], work: Path
) -> Staged:
    """Stage a CSV file. ``options``: encoding, delimiter, quote, escape, header_row (1-based)."""
    encoding = _codec(options)
    delimiter = str(options.get("delimiter", ","))
    quote = str(options.get("quote", '"'))
    escape = str(options.get("escape", quote))
    bad_lines: dict[int, str] = {}
    if encoding not in UTF8_NAMES:
        utf8 = work / (path.name + ".utf8")
        bad_lines = _transcode(path, utf8, encoding)
        path = utf8
    header_line, header = _header(path, delimiter, quote)
    columns = normalise_names(header)
    spec = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in columns) + "}"
    try:
        con.execute(
            f"""CREATE OR REPLACE TABLE src AS SELECT * FROM read_csv({sql_str(str(path))},
                header=true, auto_detect=false, columns={spec}, delim={sql_str(delimiter)},
                quote={sql_str(quote)}, escape={sql_str(escape)}, strict_mode=true, encoding='utf-8',
                store_rejects=true, rejects_table='rejects_err', rejects_scan='rejects_scan',
                compression='none')"""
        )
        rows = _count(con)
        rejected = con.execute(
            """SELECT line, min(column_name), string_agg(DISTINCT error_message, '; '), min(csv_line)
               FROM rejects_err GROUP BY line ORDER BY line"""
        ).fetchall()
    except duckdb.Error as exc:
        raise AcquireError(
            f"cannot read {unit} as CSV: {exc}", remedy="check the file and the connector options"
        ) from None

    def raw(line: str) -> str:
        return header_line + "\n" + line

    rejects = [
        Rejected(
            locator=f"{unit}:line {line}",
            reason=f"line {line} cannot be read as CSV: {message}",
            field=normalise_name(col) if col else None,
            raw=raw(text or ""),
        )
        for line, col, message, text in rejected
    ]
    # Physical line of staged row k: k + 2 + lines taken by rejected rows before it. Exact unless
    # quoted values span lines; then we fall back to row numbers rather than print a wrong line.
    spans = [(line, (text or "").count("\n") + 1) for line, _, _, text in rejected]
    first_k: list[int] = []
    offsets: list[int] = []
    offset = 0
    for line, span in spans:
        first_k.append(line - 2 - offset)
        offset += span
        offsets.append(offset)
    exact = _count_lines(path) == 1 + rows + offset

    def locate(k: int) -> str:
        if not exact:
            return f"{unit}#row={k + 1}"
        i = bisect.bisect_right(first_k, k)
        return f"{unit}:line {k + 2 + (offsets[i - 1] if i else 0)}"

    def locator_sql(col: str) -> str:
        if not exact:
            return f"({sql_str(unit + '#row=')} || ({col} + 1))"
        case = "".join(
            f" WHEN {col} >= {k} THEN {o}" for k, o in reversed(list(zip(first_k, offsets, strict=True)))
        )
        extra = f"(CASE{case} ELSE 0 END)" if case else "0"
        return f"({sql_str(unit + ':line ')} || ({col} + 2 + {extra}))"

    staged = Staged(rows=rows, columns=columns, rejects=rejects, locator_sql=locator_sql, locate=locate)
    staged.raw_sql = lambda: _csv_line_sql(header_line, columns, delimiter, quote)
    if bad_lines:
        # Lines of the transcoded file keep the source numbering, so find each bad line's row.
        line_to_row = {int(locate(k).rsplit(" ", 1)[1]): k for k in range(rows)} if exact else {}
        for line, reason in bad_lines.items():
            row = line_to_row.get(line)
            if row is not None:
                staged.rejected_rows[row] = Rejected(locator=f"{unit}:line {line}", reason=reason, field=None)
            elif not any(r.locator == f"{unit}:line {line}" for r in rejects) and line > 1:
                raise AcquireError(
                    f"{unit} is not valid {encoding} at line {line}: {reason}",
                    remedy="check the declared encoding of the connector",
                )
    return staged


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
