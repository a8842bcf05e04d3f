"""The data lake: Iceberg tables (raw, std, ref, ...), object store, DuckDB query engine."""

from sciti.lake import shared_entries  # noqa: F401  (before any table is loaded: decision 0123)
from sciti.lake.catalog import BATCH_PROPERTY, ZONES, Lake, MaintainResult, open_lake
from sciti.lake.errors import LakeError, QueryError
from sciti.lake.history import SnapshotInfo, TableInfo
from sciti.lake.objects import OBJECTS_TABLE, ObjectStore, record_object
from sciti.lake.query import parse_as_of, query, query_reader
from sciti.lake.ref import publish_ref
from sciti.lake.register import data_folder, field_ids
from sciti.lake.writes import CompactResult, UpsertResult

__all__ = [
    "BATCH_PROPERTY",
    "OBJECTS_TABLE",
    "ZONES",
    "CompactResult",
    "Lake",
    "LakeError",
    "MaintainResult",
    "ObjectStore",
    "QueryError",
    "SnapshotInfo",
    "TableInfo",
    "UpsertResult",
    "data_folder",
    "field_ids",
    "open_lake",
    "parse_as_of",
    "publish_ref",
    "query",
    "query_reader",
    "record_object",
]
