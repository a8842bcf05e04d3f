"""Per-kind wiring of the derived features: which canonical columns feed which feature.

Both paths (batch SQL, single-record Python) read these tables, so a kind is described once.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from sciti.model import ARROW_TYPES, get_kind
from sciti.risk.features.catalog import _kind_config, parent_fields

# Columns compared with the watch list, per kind (upper-cased, trimmed).
WATCH_COLUMNS = {
    "declaration": ["importer_id", "exporter_id", "declarant_id"],
    "consignment": ["consignor_id", "consignee_id", "consignor_name", "consignee_name"],
    "road_cargo_info": [
        "driver_document_number",
        "driver_name",
        "carrier_id",
        "consignor_id",
        "consignee_id",
    ],
    "passenger": ["document_number"],
    "currency_declaration": ["document_number", "person_name"],
}
# Column holding the goods origin used for origin_risk, per kind.
ORIGIN_COLUMN = {
    "declaration": "country_of_origin",
    "consignment": "consignor_country",
    "road_cargo_info": "consignor_country",
}
# The date the record is assessed for (``record_date``), per kind: the first of these fields that
# gives one (a timestamp's day in UTC). A consignment's are its manifest's (``from_parent``): an
# officer dates a consignment by the ship's or flight's arrival (decision 0116). A lake row with none
# is dated by the day SCITI stored it (``records.records_sql``).
DATE_COLUMNS = {
    "declaration": ("acceptance_date", "issue_datetime"),
    "consignment": ("arrival_datetime", "departure_datetime", "issue_datetime"),
    "road_cargo_info": ("submitted_at",),
    "passenger": ("departure_date", "departure_at"),
    "currency_declaration": ("declared_at",),
}
CASH_GROUP = "cash_person"
# Cash structuring features look back this many days (person_movements_90d, person_near_threshold_90d).
CASH_WINDOW_DAYS = 90


@lru_cache(maxsize=16)
def base_fields(kind: str) -> tuple[tuple[str, str, str | None], ...]:
    """(name, canonical type, code list) of the canonical fields a subject of ``kind`` carries:
    its base kinds' and those it takes from its parent record (``parent_fields``)."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for base in _kind_config(kind)["base"]:
        for f in get_kind(base).fields:
            if f.name != "declaration_version":
                out[f.name] = (f.name, f.type, f.codelist)
    for f in parent_fields(kind):
        out[f.name] = (f.name, f.type, f.codelist)
    return tuple(out.values())


@lru_cache(maxsize=16)
def date_fields(kind: str) -> tuple[tuple[str, bool], ...]:
    """``DATE_COLUMNS[kind]`` as (field, is a timestamp), for ``sql_first_date``/``py_first_date``."""
    types = {name: ftype for name, ftype, _ in base_fields(kind)}
    return tuple((name, types[name] == "timestamp") for name in DATE_COLUMNS[kind])


# Code lists a value is checked against for ``unknown_codes``: those the record kinds name and
# the reference loads whole (``reference.known_codes``). UN/LOCODE is left out: the published
# files hold its countries, not its locations. The project has no list of offices, customs
# procedures or modes of transport (a source may use its own codes, e.g. KCS's), so those fields
# are not checked (docs/risk-engine.md, decision 0093).
CHECKED_CODELISTS = ("hs", "country", "currency")


@lru_cache(maxsize=16)  # features.yaml does not change while running; real time asks per record
def coded_fields(kind: str) -> tuple[tuple[str, str], ...]:
    """(field, code list) checked for unknown codes (HS, countries, currencies)."""
    return tuple((n, cl) for n, _, cl in base_fields(kind) if cl in CHECKED_CODELISTS)


def code_checks(kind: str, known: dict[str, frozenset[str]]) -> list[tuple[str, str, str]]:
    """The unknown-code checks of ``kind``, for both paths (``single`` and ``batch``): (field,
    code list, what is looked up) for each coded field whose list is loaded. A field is unknown
    when it has a value (blank text is none) and the looked-up value is missing or not in the
    list; an HS code is looked up by its first six digits (``hs6``)."""
    return [(name, cl, "hs6" if cl == "hs" else name) for name, cl in coded_fields(kind) if known.get(cl)]


@lru_cache(maxsize=16)
def features_of(kind: str) -> frozenset[str]:
    return frozenset(f["name"] for f in _kind_config(kind)["features"])


def complete(kind: str, table: pa.Table) -> pa.Table:
    """Add the canonical columns the input lacks (as NULL) so every expression can run."""
    for name, ftype, _ in base_fields(kind):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, ARROW_TYPES[ftype]))
    return table
