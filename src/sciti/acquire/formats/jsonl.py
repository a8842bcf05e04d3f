"""JSON Lines: one JSON object per line.

Two ways to use it. With connector ``outputs`` each line is a flat source row, staged into DuckDB
and mapped like a CSV row (``stage``). Without outputs each line already holds canonical records:
``{"declaration": {...}, "declaration_item": [{...}, ...]}``, or, for a connector with a single
kind, the record itself (``read``). A line that is not a JSON object is rejected with its number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from sciti.acquire.formats.tabular import Staged, normalise_names, quote_ident, sql_str
from sciti.acquire.items import Parsed, Rejected


def _lines(data: bytes, unit: str) -> Iterator[tuple[int, Any, str | None, str]]:
    """(line number, object or None, reason when rejected, raw text) for every non-blank line.

    A unit with no line at all (an empty MQTT message, an empty file) is one rejected item,
    numbered 0: something was received, so it is counted and quarantined, never dropped.
    """
    seen = False
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        seen = True
        text = raw.decode("utf-8", errors="replace")
        reason = _unreadable(raw, number)
        if reason is not None:
            yield number, None, reason, text
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"line {number} is not valid JSON: {exc}", text
            continue
        if not isinstance(obj, dict):
            yield number, None, f"line {number} is a JSON {type(obj).__name__}, expected an object", text
            continue
        yield number, obj, None, text
    if not seen:
        what = "empty (0 bytes)" if not data else f"only blank lines ({len(data)} bytes)"
        yield 0, None, f"{unit} is {what}: there is no JSON object in it; send one JSON object per line", ""


def _unreadable(raw: bytes, number: int) -> str | None:
    """Why a line can never be JSON, in plain words and with its place, or None.

    A NUL byte and bytes that are not UTF-8 are both said as such (the parser's own words would be
    "unexpected character" or "str is not valid UTF-8: surrogates not allowed")."""
    at = raw.find(b"\x00")
    if at >= 0:
        count = raw.count(b"\x00")
        many = f" ({count} in all)" if count > 1 else ""
        return (
            f"line {number} is not valid JSON: it holds a NUL byte (0x00){many}, first at byte {at + 1} "
            "of the line; remove it at the source (a NUL inside a JSON string is written \\u0000)"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"line {number} is not valid JSON: its bytes are not valid UTF-8 (byte {exc.start + 1} of "
            f"the line is 0x{raw[exc.start]:02x}); send the text encoded as UTF-8"
        )
    return None


def _locator(unit: str, number: int) -> str:
    """``<unit>:line N``; the unit itself for a unit that has no line (number 0)."""
    return f"{unit}:line {number}" if number else unit


def read(data: bytes, *, unit: str, options: dict[str, Any], ctx: Any) -> Iterator[Parsed | Rejected]:
    """Record-style: each line holds canonical records by kind name."""
    kinds = list(getattr(ctx.connector, "kinds", []) or [])
    function = None
    if options.get("records"):  # a connector function turns each line into records (acquire.functions)
        from sciti.acquire.functions import load_function

        name = getattr(ctx.connector, "name", "?")
        function = load_function(getattr(ctx.connector, "folder", None), options["records"], connector=name)
    for number, obj, reason, text in _lines(data, unit):
        locator = _locator(unit, number)
        if obj is None:
            yield Rejected(locator=locator, reason=reason or "unreadable line", raw=text)
            continue
        if function is not None:
            try:
                made = function(obj)
            except (ValueError, KeyError, TypeError) as exc:
                yield Rejected(locator=locator, reason=f"line {number}: {exc}", raw=text)
                continue
            yield Parsed(
                locator=locator,
                records={k: v if isinstance(v, list) else [v] for k, v in made.items()},
                raw=text,
            )
            continue
        if any(k in obj for k in kinds):
            unknown = [k for k in obj if k not in kinds]
            if unknown:
                yield Rejected(
                    locator=locator, reason=f"unknown record kinds {unknown}; expected {kinds}", raw=text
                )
                continue
            records = {k: (v if isinstance(v, list) else [v]) for k, v in obj.items()}
        elif len(kinds) == 1:
            records = {kinds[0]: [obj]}
        else:
            yield Rejected(
                locator=locator, reason=f"line {number} names none of the record kinds {kinds}", raw=text
            )
            continue
        yield Parsed(locator=locator, records=records, raw=text)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def stage(
    con: duckdb.DuckDBPyConnection, path: Path, *, unit: str, options: dict[str, Any], work: Path
) -> Staged:
    """Table-style: top-level keys become (normalised) source columns, values text."""
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    rejects: list[Rejected] = []
    names: list[str] = []
    for number, obj, reason, text in _lines(path.read_bytes(), unit):
        if obj is None:
            locator = _locator(unit, number)
            rejects.append(Rejected(locator=locator, reason=reason or "unreadable line", raw=text))
            continue
        for key in obj:
            if key not in names:
                names.append(key)
        rows.append(obj)
        lines.append(number)
    columns = normalise_names(names)
    table = pa.table(
        {
            c: pa.array([_cell(r.get(n)) for r in rows], pa.string())
            for n, c in zip(names, columns, strict=True)
        }
        if names
        else {"__empty": pa.nulls(len(rows), pa.string())}
    )
    con.register("jsonl_rows", table)
    con.execute("CREATE OR REPLACE TABLE src AS SELECT * FROM jsonl_rows")
    con.unregister("jsonl_rows")
    con.register(
        "jsonl_lines_in",
        pa.table({"jl_row": pa.array(range(len(lines)), pa.int64()), "jl_line": pa.array(lines, pa.int64())}),
    )
    con.execute("CREATE OR REPLACE TABLE src_lines AS SELECT * FROM jsonl_lines_in")
    con.unregister("jsonl_lines_in")
    staged = Staged(rows=len(rows), columns=columns, rejects=rejects, sparse=True)
    staged.locate = lambda k: f"{unit}:line {lines[k]}"
    staged.locator_sql = lambda col: (
        f"({sql_str(unit + ':line ')} || (SELECT jl_line FROM src_lines WHERE jl_row = {col}))"
    )
    pairs = ", ".join(f"{sql_str(n)}, {quote_ident(c)}" for n, c in zip(names, columns, strict=True))
    staged.raw_sql = (lambda: f"CAST(json_object({pairs}) AS VARCHAR)") if names else None
    return staged
