"""Scalar definitions used by both paths: each derived value has its SQL and its Python form here,
side by side, so batch (DuckDB) and single-record (Python) results stay identical.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

# Separator of multi-column history keys: a control character no code contains.
KEY_SEP = "\x1f"
_NOT_DIGIT = re.compile(r"[^0-9]")


# --- SQL (DuckDB) ------------------------------------------------------------------------------


def sql_float(value: float) -> str:
    """A number literal as DOUBLE (DuckDB reads 0.123 as DECIMAL, which can overflow and round)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def sql_text(col: str) -> str:
    """A column as trimmed text, NULL when empty."""
    return f"NULLIF(TRIM(CAST({col} AS VARCHAR)), '')"


def sql_hs_prefix(col: str, n: int) -> str:
    digits = f"regexp_replace(CAST({col} AS VARCHAR), '[^0-9]', '', 'g')"
    return f"CASE WHEN length({digits}) >= {n} THEN left({digits}, {n}) END"


def sql_number(col: str) -> str:
    return f"TRY_CAST({col} AS DOUBLE)"


# Unit value is the customs value (national currency) per kg where the declaration gives one: the
# item price is in the invoice's currency, and prices in yuan, yen and dollars in one reference band
# would hide an undervaluation. Sources without a customs value (KCS) fall back to the item price.
UNIT_VALUE_FIELDS = ("customs_value", "item_price", "net_mass_kg")


def sql_unit_value(value: str, price: str, mass: str) -> str:
    v, p, m = sql_number(value), sql_number(price), sql_number(mass)
    amount = f"coalesce(CASE WHEN {v} > 0 THEN {v} END, CASE WHEN {p} >= 0 THEN {p} END)"
    return f"CASE WHEN {m} > 0 THEN {amount} / {m} END"


# The amount a unit value is on. Price bands are kept apart per basis: a source that gives customs
# values for some items only would otherwise put national-currency values and invoice prices in
# one band.
def sql_uv_basis(value: str, price: str) -> str:
    return f"CASE WHEN {sql_number(value)} > 0 THEN 'value' WHEN {sql_number(price)} >= 0 THEN 'price' END"


def sql_date(date_col: str | None, ts_col: str | None) -> str:
    return sql_first_date([(c, ts) for c, ts in ((date_col, False), (ts_col, True)) if c])


def sql_first_date(cols: Sequence[tuple[str, bool]]) -> str:
    """The date of the first of ``cols`` (column, is a timestamp) that gives one; a timestamp's
    day in UTC."""
    parts = [
        f"CAST(TRY_CAST({c} AS TIMESTAMPTZ) AS DATE)" if ts else f"TRY_CAST({c} AS DATE)" for c, ts in cols
    ]
    return (
        f"COALESCE({', '.join(parts)})" if len(parts) > 1 else (parts[0] if parts else "CAST(NULL AS DATE)")
    )


def sql_key(cols: list[str]) -> str:
    """History key: NULL when any part is missing."""
    texts = [sql_text(c) for c in cols]
    if len(texts) == 1:
        return texts[0]
    nulls = " OR ".join(f"{t} IS NULL" for t in texts)
    return f"CASE WHEN {nulls} THEN NULL ELSE concat_ws(chr(31), {', '.join(texts)}) END"


def sql_upper(col: str) -> str:
    return f"upper({sql_text(col)})"


# --- Python ------------------------------------------------------------------------------------


def py_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip(" ")  # DuckDB TRIM removes spaces only
    return text or None


def py_hs_prefix(value: Any, n: int) -> str | None:
    if value is None:
        return None
    digits = _NOT_DIGIT.sub("", str(value))
    return digits[:n] if len(digits) >= n else None


def py_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float | Decimal):
        out = float(value)
    else:
        try:
            out = float(str(value).strip())
        except ValueError:
            return None
    return out


def py_unit_value(value: Any, price: Any, mass: Any) -> float | None:
    v, p, m = py_number(value), py_number(price), py_number(mass)
    amount = v if v is not None and v > 0 else (p if p is not None and p >= 0 else None)
    if amount is None or m is None or not m > 0:
        return None
    return amount / m


def py_uv_basis(value: Any, price: Any) -> str | None:
    v, p = py_number(value), py_number(price)
    if v is not None and v > 0:
        return "value"
    return "price" if p is not None and p >= 0 else None


def py_date(value: Any, ts: Any = None) -> date | None:
    return py_first_date([(value, False), (ts, True)])


def py_first_date(values: Sequence[tuple[Any, bool]]) -> date | None:
    """``sql_first_date`` of one record: (value, is a timestamp) in order."""
    for v, is_ts in values:
        if v is None:
            continue
        if isinstance(v, datetime):
            return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC).date()
        if isinstance(v, date):
            return v
        text = str(v).strip()
        try:
            if is_ts:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).date()
            return date.fromisoformat(text[:10])
        except ValueError:
            continue
    return None


def py_key(values: list[Any]) -> str | None:
    texts = [py_text(v) for v in values]
    if any(t is None for t in texts):
        return None
    return KEY_SEP.join(texts)  # type: ignore[arg-type]


def py_upper(value: Any) -> str | None:
    text = py_text(value)
    return text.upper() if text is not None else None


def py_ln(value: float | None) -> float | None:
    return math.log(value) if value is not None and value > 0 else None
