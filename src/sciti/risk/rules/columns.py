"""What a rule may name: the fields and features of its record kind, and the fields its scope uses."""

from __future__ import annotations

from sciti.risk.features import SUBJECT_KINDS, ColumnInfo, columns

# Scope -> the canonical field that carries it, per record kind. A kind without the field cannot be
# scoped that way (passengers have no customs office, road cargo has no procedure).
SCOPE_FIELDS: dict[str, dict[str, str]] = {
    "declaration": {
        "offices": "office_code",
        "modes_of_transport": "mode_of_transport",
        "procedures": "procedure_code",
    },
    # Its manifest's office, as the queue's, and its manifest's mode (decisions 0108, 0113, 0116).
    "consignment": {"offices": "customs_office", "modes_of_transport": "mode_of_transport"},
    "road_cargo_info": {"offices": "entry_control_point"},
    "passenger": {"offices": "control_point"},  # where the officer works, as the queue (decision 0103)
    "currency_declaration": {"offices": "control_point"},
}


def column_infos(kind: str) -> dict[str, ColumnInfo]:
    return columns(kind)


def column_types(kind: str) -> dict[str, str]:
    """name -> number | text | bool | date for every name a rule of ``kind`` may use."""
    return {name: info.type for name, info in columns(kind).items()}


__all__ = ["SCOPE_FIELDS", "SUBJECT_KINDS", "column_infos", "column_types"]
