"""The shared vocabulary: canonical record kinds, identifiers with check digits, code lists.

Imports nothing of ours but the root errors; every other package builds on it.
"""

from sciti.model.errors import ModelError
from sciti.model.schema import (
    ARROW_TYPES,
    PARENT_COLUMN,
    PROVENANCE,
    PROVENANCE_NAMES,
    FieldDef,
    RecordKind,
    get_kind,
    load_kinds,
    make_record_id,
)

__all__ = [
    "ARROW_TYPES",
    "PARENT_COLUMN",
    "PROVENANCE",
    "PROVENANCE_NAMES",
    "FieldDef",
    "ModelError",
    "RecordKind",
    "get_kind",
    "load_kinds",
    "make_record_id",
]
