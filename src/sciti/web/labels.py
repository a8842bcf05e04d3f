"""Labels of lake columns: the catalogues' generated key set ``column.<name>``.

The pages name the columns of the lake (a record's fields, the tables of the record page, the SQL
workbench's results, a quarantined record's field, a model's factors) by a label in the reader's
language, never by the raw name. The names come from the data dictionary (the record kinds'
fields and the provenance columns, ``sciti.model``), the risk assessments' columns and the model
features (``sciti.risk.features``). Both catalogues hold a ``column.<name>`` for each; a name the
catalogues do not have yet (a field added to a kind since) is shown with an English label made
from the dictionary's name, so a page never shows ``country_of_origin``.

    python -m sciti.web.labels          # the column names no catalogue has yet, as YAML to add
"""

from __future__ import annotations

import sys
from functools import cache

from sciti.model.schema import PARENT_COLUMN, PROVENANCE, load_kinds
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA
from sciti.risk.features.catalog import SUBJECT_KINDS, columns

# Words a plain capitalisation would spoil, and units written as a suffix of the name.
_WORDS = {
    "hs": "HS",
    "hs4": "HS4",
    "hs6": "HS6",
    "id": "ID",
    "ids": "IDs",
    "imo": "IMO",
    "ip": "IP",
    "aeo": "AEO",
    "mra": "MRA",
}
_UNITS = {"kg": "(kg)", "pct": "(%)", "deg": "(degrees)", "kmh": "(km/h)", "c": "(°C)"}


@cache
def column_names() -> tuple[str, ...]:
    """Every column name the pages may label: dictionary fields, provenance, assessments, features."""
    names: dict[str, None] = {}
    for name, _, _ in PROVENANCE:
        names[name] = None
    names[PARENT_COLUMN[0]] = None
    for kind in load_kinds().values():
        for f in kind.fields:
            names[f.name] = None
    for field in ASSESSMENTS_SCHEMA:
        names[field.name] = None
    for kind_name in SUBJECT_KINDS:
        for name, info in columns(kind_name).items():
            if info.derived:
                names[name] = None
    return tuple(names)


def humanise(name: str) -> str:
    """``country_of_origin`` -> "Country of origin", ``net_mass_kg`` -> "Net mass (kg)"."""
    words = name.split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    shown = [_WORDS.get(w, w) for w in words]
    if shown and shown[0] == words[0]:
        shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown) + (f" {unit}" if unit else "")


def english_label(name: str) -> str | None:
    """The fallback label of a dictionary column no catalogue has; None for any other name."""
    return humanise(name) if name in set(column_names()) else None


def missing(messages: dict[str, str]) -> list[str]:
    """Column names without a ``column.<name>`` in ``messages`` (a flat catalogue)."""
    return [n for n in column_names() if f"column.{n}" not in messages]


def main() -> int:
    from sciti.web.i18n import LANGUAGES, catalogue

    todo = sorted({n for lang in LANGUAGES for n in missing(catalogue(lang))})
    if not todo:
        print("every column has a label in every catalogue")
        return 0
    print("# add under column: in each catalogue (the English made from the name; translate it)")
    for name in todo:
        print(f"  {name}: {humanise(name)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["column_names", "english_label", "humanise", "missing"]
