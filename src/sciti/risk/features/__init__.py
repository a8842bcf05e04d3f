"""Derived risk features: the same values in batch (DuckDB/Arrow) and for one record (Python)."""

from sciti.risk.features.batch import compute_batch
from sciti.risk.features.catalog import SUBJECT_KINDS, ColumnInfo, columns, feature_names
from sciti.risk.features.national import National
from sciti.risk.features.records import LABEL_COLUMNS, lake_records, records_sql
from sciti.risk.features.reference import (
    Reference,
    build_reference,
    build_reference_from,
    known_codes,
    lake_snapshot_id,
    load_reference,
    save_reference,
)
from sciti.risk.features.single import compute_one

__all__ = [
    "LABEL_COLUMNS",
    "SUBJECT_KINDS",
    "ColumnInfo",
    "National",
    "Reference",
    "build_reference",
    "build_reference_from",
    "columns",
    "compute_batch",
    "compute_one",
    "feature_names",
    "known_codes",
    "lake_records",
    "lake_snapshot_id",
    "load_reference",
    "records_sql",
    "save_reference",
]
