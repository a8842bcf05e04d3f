"""Code lists as data: HS 2022 and UN/LOCODE countries from the published files, ISO lists from pycountry.

``load_codelists(dir)`` reads ``<dir>/hs/harmonized-system.csv`` and
``<dir>/unlocode/country-codes.csv`` once per folder. ISO 3166 countries and ISO 4217 currencies
come from the ``pycountry`` package, which ships the Debian iso-codes data and is updated with it.

The UN/LOCODE files published with the code list hold its support tables, not the ~100,000
locations, so a five-character UN/LOCODE is accepted when its first two letters are a UN/LOCODE
country and the other three are letters or the digits 2-9 (the code's own alphabet).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pycountry

from sciti.model.errors import ModelError

HS_FILE = Path("hs") / "harmonized-system.csv"
UNLOCODE_FILE = Path("unlocode") / "country-codes.csv"
# UN Comtrade's aggregate rows ("TOTAL", 99 "commodities not specified") are not HS headings.
_HS_NOT_NOMENCLATURE = "TOTAL"
# Names the model's fields use in ``codelist:``.
CODELIST_NAMES: dict[str, str] = {
    "hs": "HS 2022 nomenclature",
    "country": "ISO 3166-1 alpha-2 country codes",
    "currency": "ISO 4217 currency codes",
    "unlocode": "UN/LOCODE (country part checked)",
}
UNLOCODE_LOCATION_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789")


@dataclass(frozen=True)
class HSCode:
    code: str
    description: str
    level: int
    parent: str | None
    section: str


@dataclass(frozen=True, eq=False)
class CodeLists:
    """The loaded code lists. Sets are for lookups; the Arrow arrays serve vectorised checks."""

    hs: dict[str, HSCode]
    country: dict[str, str]
    currency: dict[str, str]
    unlocode: dict[str, str]
    source: Path | None = None
    hs6: frozenset[str] = field(init=False)
    _arrays: dict[str, pa.Array] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hs6 = frozenset(c for c, h in self.hs.items() if h.level == 6)
        object.__setattr__(self, "hs6", hs6)
        arrays = {
            "hs": pa.array(sorted(hs6), pa.string()),
            "country": pa.array(sorted(self.country), pa.string()),
            "currency": pa.array(sorted(self.currency), pa.string()),
            "unlocode": pa.array(sorted(self.unlocode), pa.string()),
        }
        object.__setattr__(self, "_arrays", arrays)

    def value_set(self, name: str) -> pa.Array:
        """Arrow array of the codes a value is checked against (HS: the 6-digit subheadings)."""
        return self._arrays[name]

    def as_tables(self) -> dict[str, pa.Table]:
        """The code lists as Arrow tables, named as the lake's ``ref`` zone publishes them."""
        hs = sorted(self.hs.values(), key=lambda h: h.code)
        return {
            "hs": pa.table(
                {
                    "code": [h.code for h in hs],
                    "description": [h.description for h in hs],
                    "level": pa.array([h.level for h in hs], pa.int32()),
                    "parent": [h.parent for h in hs],
                    "section": [h.section for h in hs],
                }
            ),
            "countries": _pairs(self.country, "code", "name"),
            "currencies": _pairs(self.currency, "code", "name"),
            "unlocode_countries": _pairs(self.unlocode, "code", "name"),
        }


def _pairs(mapping: dict[str, str], key: str, value: str) -> pa.Table:
    items = sorted(mapping.items())
    return pa.table({key: [k for k, _ in items], value: [v for _, v in items]})


def _open_csv(path: Path, what: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise ModelError(
            f"{what} code list not found at {path}",
            remedy="set SCITI_CODELISTS_DIR (or codelists_dir in sciti.toml) to the folder holding "
            "hs/harmonized-system.csv and unlocode/country-codes.csv",
        )
    # utf-8-sig: the published files sometimes start with a byte-order mark.
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _read_hs(path: Path) -> dict[str, HSCode]:
    codes: dict[str, HSCode] = {}
    for n, row in enumerate(_open_csv(path, "HS 2022"), start=2):
        try:
            if row["section"] == _HS_NOT_NOMENCLATURE:
                continue
            code, level = row["hscode"].strip(), int(row["level"])
            parent = row["parent"].strip()
            codes[code] = HSCode(
                code, row["description"].strip(), level, None if level == 2 else parent, row["section"]
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise ModelError(
                f"HS code list {path} line {n} is malformed: {exc}",
                remedy="use the published datasets/harmonized-system CSV "
                "(columns section, hscode, description, parent, level)",
            ) from exc
    if not any(h.level == 6 for h in codes.values()):
        raise ModelError(f"HS code list {path} holds no 6-digit subheadings", remedy="check the file")
    return codes


def _read_unlocode_countries(path: Path) -> dict[str, str]:
    rows = _open_csv(path, "UN/LOCODE country")
    try:
        return {
            r["CountryCode"].strip().upper(): r["CountryName"].strip()
            for r in rows
            if r["CountryCode"].strip()
        }
    except KeyError as exc:
        raise ModelError(
            f"UN/LOCODE country list {path} lacks column {exc}",
            remedy="use the published datasets/un-locode country-codes.csv (CountryCode,CountryName)",
        ) from exc


@lru_cache(maxsize=8)
def _load(codelists_dir: Path) -> CodeLists:
    countries = {c.alpha_2: c.name for c in pycountry.countries}
    currencies = {c.alpha_3: c.name for c in pycountry.currencies}
    return CodeLists(
        hs=_read_hs(codelists_dir / HS_FILE),
        country=countries,
        currency=currencies,
        unlocode=_read_unlocode_countries(codelists_dir / UNLOCODE_FILE),
        source=codelists_dir,
    )


def load_codelists(codelists_dir: Path) -> CodeLists:
    """Load (once per folder, then cached) the code lists from ``codelists_dir``."""
    return _load(Path(codelists_dir).resolve())
