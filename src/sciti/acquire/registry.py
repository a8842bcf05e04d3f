"""The registry of formats: name -> reader function, plus what every reader is handed.

Readers of other engineers' formats (WCO XML, EDIFACT) are imported lazily, on first use, so a
missing or broken module never stops CSV ingestion.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sciti.acquire.connector import Connector
    from sciti.settings import Settings


@dataclass
class FormatContext:
    """What a reader may need beyond the bytes: settings (code lists, schema folders) and the connector."""

    settings: Settings
    connector: Connector


def _lazy(module: str, attr: str = "read") -> Callable[..., Any]:
    def reader(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    reader.__name__ = f"{module}.{attr}"
    reader.__doc__ = f"Lazily imported {module}.{attr}."
    return reader


# Table-style formats are staged into DuckDB and mapped by the connector's ``outputs``; jsonl is
# table-style when the connector has outputs, record-style (lines are canonical records) otherwise.
TABLE_FORMATS = frozenset({"csv", "parquet", "jsonl"})

FORMATS: dict[str, Callable[..., Any]] = {
    "csv": _lazy("sciti.acquire.formats.tabular", "stage_csv"),
    "parquet": _lazy("sciti.acquire.formats.tabular", "stage_parquet"),
    "jsonl": _lazy("sciti.acquire.formats.jsonl", "read"),
    "wco-xml": _lazy("sciti.acquire.formats.wco_xml", "read"),
    "edifact": _lazy("sciti.acquire.formats.edifact", "read"),
}
