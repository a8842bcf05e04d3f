"""The reference zone: code lists and other tables published whole (``ref.<name>``)."""

from __future__ import annotations

import re

import pyarrow as pa

from sciti.lake.catalog import Lake
from sciti.lake.errors import LakeError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def publish_ref(lake: Lake, name: str, table: pa.Table, *, batch_id: str | None = None) -> int | None:
    """Replace the whole ``ref.<name>`` table with ``table`` in one atomic commit.

    New columns are added to the table's schema; columns no longer published read as NULL. Readers
    see the old list or the new one, never a mix; earlier versions stay readable by time travel.
    Returns the new snapshot id.
    """
    if not _NAME.match(name):
        raise LakeError(
            f"{name!r} is not a valid reference table name", remedy="use lower-case letters, digits, _"
        )
    ident = f"ref.{name}"
    lake.ensure_table(ident, table.schema)
    return lake.replace(ident, table, batch_id=batch_id)
