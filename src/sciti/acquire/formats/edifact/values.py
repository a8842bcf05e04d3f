"""Turning EDIFACT data element values into canonical field values: dates, numbers, masses.

A value that cannot be converted is passed on as written, never dropped: the runner validates
every record against its kind and quarantines it with the field and the reason.
"""

from __future__ import annotations

from typing import Any

from sciti.acquire.formats.edifact.syntax import Segment

# Unit codes (UN/ECE Rec 20) for mass -> factor to kilograms.
_MASS_KG = {"KGM": 1.0, "TNE": 1000.0, "GRM": 0.001, "LBR": 0.45359237, "KG": 1.0}
# MEA 6313 measured attributes meaning gross / net / tare mass (G and N are the older codes).
GROSS = frozenset({"G", "AAB", "AAD"})
NET = frozenset({"N", "AAA", "AAF"})
TARE = frozenset({"T"})


def date_value(value: str, fmt: str) -> str | None:
    """ISO 8601 text from a DTM value and its format qualifier (UN/EDIFACT 2379).

    Times carry no zone in EDIFACT; they are taken as UTC, as agreed with reporting parties.
    """
    if not value:
        return None
    v = value.strip()
    fmt = fmt or ("102" if len(v) == 8 else "203" if len(v) == 12 else "")
    if fmt in ("101", "201", "202"):  # two-digit years: 00-69 -> 20xx
        v = ("20" if int(v[:2] or 0) < 70 else "19") + v if v[:2].isdigit() else v
        fmt = {"101": "102", "201": "203", "202": "204"}[fmt]
    if not v.isdigit():
        return value
    if fmt == "102" and len(v) == 8:
        return f"{v[:4]}-{v[4:6]}-{v[6:8]}"
    if fmt == "203" and len(v) == 12:
        return f"{v[:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:00+00:00"
    if fmt == "204" and len(v) == 14:
        return f"{v[:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:{v[12:14]}+00:00"
    return value


def timestamp_value(value: str, fmt: str) -> str | None:
    """Like date_value, but a bare date becomes midnight UTC (for timestamp fields)."""
    out = date_value(value, fmt)
    if out and len(out) == 10 and out[4] == "-":
        return out + "T00:00:00+00:00"
    return out


def number(value: str, decimal_mark: str = ".") -> Any:
    """A float for a numeric value (either decimal mark accepted), else the text as written."""
    if not value:
        return None
    text = value.replace(",", ".") if decimal_mark == "," or "," in value else value
    try:
        return float(text)
    except ValueError:
        return value


def integer(value: str) -> Any:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        f = number(value)
        return int(f) if isinstance(f, float) and f.is_integer() else value


def mass_kg(mea: Segment) -> tuple[str, Any] | None:
    """(attribute, kilograms) from a MEA segment stating a mass, else None."""
    attribute = mea.get(1, 0)
    unit, amount = mea.get(2, 0), mea.get(2, 1)
    if not amount or unit not in _MASS_KG:
        return None
    value = number(amount)
    if isinstance(value, float):
        value = round(value * _MASS_KG[unit], 3)
    return attribute, value


def dtm(seg: Segment) -> tuple[str, str, str]:
    """(qualifier, value, format) of a DTM segment."""
    return seg.get(0, 0), seg.get(0, 1), seg.get(0, 2)


def party_name(nad: Segment) -> str | None:
    """The party name from NAD C080 (structured) or else C058 (name and address lines)."""
    parts = [p for p in (nad.elements[3] if len(nad.elements) > 3 else []) if p]
    if len(parts) > 1 and len(parts[-1]) <= 3 and parts[-1].isalpha() and parts[-1].isupper():
        parts = parts[:-1]  # 3045 name format code, not part of the name
    if parts:
        return " ".join(parts)
    lines = [p for p in (nad.elements[2] if len(nad.elements) > 2 else []) if p]
    return lines[0] if lines else None


def party(nad: Segment) -> dict[str, Any]:
    """Identifier, name and address of a NAD segment."""
    street = " ".join(p for p in (nad.elements[4] if len(nad.elements) > 4 else []) if p)
    return {
        "id": nad.get(1, 0) or None,
        "name": party_name(nad),
        "street": street or None,
        "city": nad.get(5) or None,
        "postcode": nad.get(7) or None,
        "country": nad.get(8) or None,
    }


def join(values: list[str], sep: str = ",") -> str | None:
    seen = list(dict.fromkeys(v for v in values if v))
    return sep.join(seen) if seen else None
