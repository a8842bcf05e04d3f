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
    """(line number, object or None, reason when rejected, raw text) for every non-blank line."""
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"line {number} is not valid JSON: {exc}", text
            continue
        if not isinstance(obj, dict):
            yield number, None, f"line {number} is a JSON {type(obj).__name__}, expected an object", text
            continue
        yield number, obj, None, text


def read(data: bytes, *, unit: str, options: dict[str, Any], ctx: Any) -> Iterator[Parsed | Rejected]:
    """Record-style: each line holds canonical records by kind name."""
    kinds = list(getattr(ctx.connector, "kinds", []) or [])
    function = None
    if options.get("records"):  # a connector function turns each line into records (acquire.functions)
        from sciti.acquire.functions import load_function

        name = getattr(ctx.connector, "name", "?")
        function = load_function(getattr(ctx.connector, "folder", None), options["records"], connector=name)
    for number, obj, reason, text in _lines(data, unit):
        locator = f"{unit}:line {number}"
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
            rejects.append(
                Rejected(locator=f"{unit}:line {number}", reason=reason or "unreadable line", raw=text)
            )
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
