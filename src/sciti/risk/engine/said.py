"""The values an assessment's words are made from: one spelling of a number, batch or real time.

The lake keeps amounts as decimals (``Decimal(18,4)``: 6806.7500); real time receives the same
amounts as JSON numbers (6806.75). The reasons and model factors format whatever value they are
given (a rule's ``{item_price}``, a factor's "Item price is 6,806.75"), so a decimal would read
"6806.7500" in batch where real time says "6,806.75". Every value the words read therefore goes
through ``said`` first, on both paths: a decimal becomes the float real time has. The scores are
computed from the values as they are; only the words read these.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def said(value: Any) -> Any:
    """One value as the words read it: a decimal as the float real time receives."""
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    return value


def said_row(row: dict[str, Any]) -> dict[str, Any]:
    """``said`` for every value of one row (the row itself when nothing changes)."""
    if not any(isinstance(v, Decimal) for v in row.values()):
        return row
    return {k: said(v) for k, v in row.items()}


def said_table(table: pa.Table) -> pa.Table:
    """``said`` for a whole features table: decimal columns become float64 (the rest unchanged).

    Through the decimal's text: Arrow's direct decimal-to-float cast is not correctly rounded
    (6806.7501 may come out one unit in the last place off ``float(Decimal)``); parsing the exact
    text is, so every value equals ``said`` of it."""
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            col = pc.cast(pc.cast(table.column(i), pa.string()), pa.float64())
            table = table.set_column(i, pa.field(f.name, pa.float64(), f.nullable), col)
    return table


__all__ = ["said", "said_row", "said_table"]
