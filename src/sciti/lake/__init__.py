"""The data lake: Iceberg tables (raw, std, ref, ...), object store, DuckDB query engine."""

from sciti.lake.catalog import BATCH_PROPERTY, ZONES, Lake, open_lake
from sciti.lake.errors import LakeError

__all__ = ["BATCH_PROPERTY", "ZONES", "Lake", "LakeError", "open_lake"]
