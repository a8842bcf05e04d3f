"""Register Parquet files another engine wrote (DuckDB ``COPY``) as one Iceberg append.

The acquisition runner writes a batch's rows straight into a table's data folder with DuckDB,
field ids taken from the Iceberg schema, then commits them here in one snapshot carrying the batch
id. pyiceberg's public ``add_files`` refuses files that carry field ids, so the data-file entries
are built from each file's footer statistics the way pyiceberg does for the files it writes.
Files written but never committed (a crash in between) are orphans: no snapshot refers to them,
so readers never see them, and a recovery run writes new files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table

from sciti.lake.errors import LakeError
from sciti.lake.files import local_path
from sciti.lake.history import BATCH_PROPERTY
from sciti.lake.writes import transaction

__all__ = ["append_files", "data_folder", "field_ids"]


def data_folder(table: Table) -> Path:
    """The local folder holding the table's data files (created if missing)."""
    root = local_path(table.location())
    if root is None:
        raise LakeError(
            f"table {table.name()} lives at {table.location()}, which is not a local folder",
            remedy="use a local warehouse for bulk file ingest, or ingest through Lake.append",
        )
    folder = Path(root) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def field_ids(table: Table) -> dict[str, int]:
    """Top-level column name -> Iceberg field id, for DuckDB's ``COPY ... (FIELD_IDS {...})``."""
    return {f.name: f.field_id for f in table.schema().fields}


def _location(table: Table, path: Path) -> str:
    """The file's path spelled like the table's own location (a file:// URL or a plain path), and
    as pyiceberg reads it: not percent-encoded (see sciti.lake.files.local_path)."""
    return f"file://{path.resolve()}" if table.location().startswith("file:") else str(path.resolve())


def _data_file(table: Table, path: str) -> DataFile:
    meta = table.metadata
    schema = meta.schema()
    footer = pq.read_metadata(path)
    names = {f.name for f in schema.fields}
    # top-level columns: the Parquet schema's own names are its leaves (a list's are "element")
    missing = [c for c in footer.schema.to_arrow_schema().names if c not in names]
    if missing:
        raise LakeError(
            f"{path} has columns {missing} that table {table.name()} does not have",
            remedy="evolve the table schema (Lake.ensure_table) before writing the files",
        )
    stats = data_file_statistics_from_parquet_metadata(
        parquet_metadata=footer,
        stats_columns=compute_statistics_plan(schema, meta.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=_location(table, Path(path)),
        file_format=FileFormat.PARQUET,
        partition=stats.partition(meta.spec(), schema),
        file_size_in_bytes=Path(path).stat().st_size,
        sort_order_id=None,
        spec_id=meta.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **stats.to_serialized_dict(),
    )


def append_files(table: Table, paths: Sequence[str | Path], *, batch_id: str | None = None) -> int | None:
    """Add ``paths`` (Parquet with the table's field ids) in one fast-append snapshot.

    Returns the new snapshot id, or None when there is nothing to add (empty files are skipped).
    """
    files = [_data_file(table, str(p)) for p in paths]
    files = [f for f in files if f.record_count > 0]
    if not files:
        return None
    props = {BATCH_PROPERTY: batch_id} if batch_id else {}
    # Our transaction: pyiceberg's own rebuilds the whole metadata at every read, so a commit
    # would grow slower with every snapshot the table keeps (see LakeTransaction).
    with transaction(table) as tx, tx.update_snapshot(snapshot_properties=props).fast_append() as append:
        for f in files:
            append.append_data_file(f)
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None
