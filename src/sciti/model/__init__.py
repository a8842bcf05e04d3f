"""The shared vocabulary: canonical record kinds, identifiers with check digits, code lists.

Imports nothing of ours but the root errors; every other package builds on it.
"""

from sciti.model.codelists import CODELIST_NAMES, CodeLists, HSCode, load_codelists
from sciti.model.dictionary import render_markdown
from sciti.model.errors import ModelError
from sciti.model.identifiers import (
    IDENTIFIERS,
    imo_check_digit,
    imo_valid,
    iso6346_check_digit,
    iso6346_valid,
    normalise_container,
    normalise_imo,
)
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
from sciti.model.validate import Problem, TableValidation, field_schema, validate_record, validate_table

__all__ = [
    "ARROW_TYPES",
    "CODELIST_NAMES",
    "IDENTIFIERS",
    "PARENT_COLUMN",
    "PROVENANCE",
    "PROVENANCE_NAMES",
    "CodeLists",
    "FieldDef",
    "HSCode",
    "ModelError",
    "Problem",
    "RecordKind",
    "TableValidation",
    "field_schema",
    "get_kind",
    "imo_check_digit",
    "imo_valid",
    "iso6346_check_digit",
    "iso6346_valid",
    "load_codelists",
    "load_kinds",
    "make_record_id",
    "normalise_container",
    "normalise_imo",
    "render_markdown",
    "validate_record",
    "validate_table",
]
