"""How rows are laid out in a table's data files: sorted by the table's lookup key, small row groups.

Pages and the risk engine read one record (``WHERE record_id = ...``) or one record's children
(``WHERE parent_record_id = ...``). DuckDB skips a Parquet row group whose min/max statistics
exclude the value, so a lookup reads one row group instead of decompressing a whole file, but only
if the file is sorted by that key and cut into several row groups (decision 0062).

The key is the table's Iceberg sort order (the spec's field, so Spark and Trino honour it too).
Tables we create get a default one from :func:`lookup_key`; a table that already has a sort order
keeps it. Files we write sorted carry the order's id (``sort_order_id`` in the manifest), so
compaction knows which files still need sorting. Row groups are bounded by the table property
``write.parquet.row-group-limit`` (pyiceberg's writer reads it), set when absent.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder, SortDirection, SortOrder
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import StringType

ROW_GROUP_PROPERTY = "write.parquet.row-group-limit"
# 16,384 rows: a lookup decompresses ~16k rows of each column it reads instead of the whole file
# (~100k+ rows per compacted table in the small demo world), while statistics and page overhead
# stay negligible and DuckDB still gets several row groups to scan in parallel.
ROW_GROUP_ROWS = 16_384
DEFAULT_LAYOUT = {ROW_GROUP_PROPERTY: str(ROW_GROUP_ROWS)}
PARENT_KEY = "parent_record_id"
RECORD_KEY = "record_id"


def lookup_key(schema: Schema) -> tuple[str, ...]:
    """The column a table is read by, one value at a time: what its files are sorted by.

    Child records (items, parties: any table with ``parent_record_id``) are read by their parent;
    other tables by their own id: the first column when it is a required text column named
    ``*_id`` (``record_id`` for every record kind, whose provenance columns come first;
    ``assessment_id`` for ``risk.assessments``), else ``record_id`` wherever it is. Otherwise none.
    """
    names = {f.name for f in schema.fields}
    if PARENT_KEY in names:
        return (PARENT_KEY,)
    first = schema.fields[0] if schema.fields else None
    if (
        first is not None
        and first.required
        and first.name.endswith("_id")
        and first.field_type == StringType()
    ):
        return (first.name,)
    return (RECORD_KEY,) if RECORD_KEY in names else ()


def sort_columns(table: Table) -> tuple[int, tuple[str, ...], bool] | None:
    """(order id, source columns, nulls first) of the table's sort order, or None when unsorted.

    Orders we cannot reproduce by sorting the source columns (descending fields, transforms that do
    not preserve order such as ``bucket``) count as unsorted: files are written as they come.
    """
    order: SortOrder = table.sort_order()
    if order.is_unsorted:
        return None
    schema = table.schema()
    columns: list[str] = []
    for f in order.fields:
        if f.direction != SortDirection.ASC or not f.transform.preserves_order:
            return None
        try:
            columns.append(schema.find_column_name(f.source_id) or "")
        except ValueError:
            return None
        if "." in columns[-1] or not columns[-1]:  # a nested source column
            return None
    return order.order_id, tuple(columns), order.fields[0].null_order == NullOrder.NULLS_FIRST


def sort_rows(table: Table, data: pa.Table) -> tuple[pa.Table, int | None]:
    """``data`` in the table's sort order, and that order's id (None: left as it came)."""
    spec = sort_columns(table)
    if spec is None or data.num_rows == 0:
        return data, None
    order_id, columns, nulls_first = spec
    if any(c not in data.column_names for c in columns):
        return data, None
    nulls = "at_start" if nulls_first else "at_end"
    indices = pc.sort_indices(data, sort_keys=[(c, "ascending", nulls) for c in columns])
    return data.take(indices), order_id


def is_sorted(table: Table, file: DataFile) -> bool:
    """Whether a data file says it was written in the table's current sort order (or none is set)."""
    spec = sort_columns(table)
    return spec is None or file.sort_order_id == spec[0]


def mark_sorted(files: list[DataFile], order_id: int | None) -> None:
    """Record in each new file's manifest entry the sort order its rows follow.

    pyiceberg's writer leaves ``sort_order_id`` empty (apache/iceberg-python#271); the field is
    position 15 of the data-file struct, which its ``sort_order_id`` property reads.
    """
    if order_id is None:
        return
    for f in files:
        f[15] = order_id
        if f.sort_order_id != order_id:  # a pyiceberg upgrade moved the field: fail loudly here
            raise RuntimeError("pyiceberg's DataFile layout changed: sort_order_id is not field 15")


def default_sort_order(table: Table) -> tuple[str, ...]:
    """Give an unsorted table its lookup key as sort order (one metadata commit); returns the key."""
    if not table.sort_order().is_unsorted:
        return ()
    key = lookup_key(table.schema())
    if key:
        with table.update_sort_order() as update:
            for name in key:
                update.asc(name, IdentityTransform(), NullOrder.NULLS_LAST)
    return key


def layout_properties(table: Table) -> dict[str, str]:
    """Layout properties the table lacks (defaults only: a value someone set is kept)."""
    return {k: v for k, v in DEFAULT_LAYOUT.items() if k not in table.properties}
