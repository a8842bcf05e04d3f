"""What a valid value is, one value at a time: the reference semantics of validation.

``check_value`` is what ``validate_record`` runs for each field. ``validate_table`` reaches the
same outcome with vectorised Arrow kernels and falls back to ``coerce`` for the values those
kernels leave unparsed, so the two never disagree (tests/model/test_parity.py checks it).

Accepted text forms:
- int: ``-12``, ``+12``, ``12.0`` (an integral decimal); absolute value below 10**18.
- float: decimal or scientific notation (``1.5``, ``.5``, ``1e3``); finite.
- decimal: same forms; fraction digits beyond 18 are dropped, then rounded half-to-even to the
  4 places stored; absolute value below 10**14 (decimal(18, 4)).
- bool: true/false, t/f, yes/no, y/n, 1/0 in any case.
- date: ``YYYY-MM-DD`` or ``YYYYMMDD``.
- timestamp: ISO 8601 ``YYYY-MM-DD[(T| )hh[:mm[:ss[.fraction]]]][Z|±hh[[:]mm]]`` (no zone = UTC),
  or EDIFACT format 203 ``CCYYMMDDHHMM`` / 204 ``CCYYMMDDHHMMSS`` (UTC).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sciti.model.codelists import UNLOCODE_LOCATION_CHARS, CodeLists
from sciti.model.identifiers import ASCII_LOWER, ASCII_UPPER, IDENTIFIER_NAMES, IDENTIFIERS, NORMALISERS
from sciti.model.schema import FieldDef

# Characters trimmed from both ends of text: ASCII and the Unicode spaces CJK and European sources use.
TRIM_CHARS = " \t\n\r\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
INT_LIMIT = 10**18
DECIMAL_LIMIT = Decimal(10) ** 14
DECIMAL_PLACES = Decimal("0.0001")
_FRACTION_FLOOR = Decimal("1e-18")

_INT_RE = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})|([0-9]{4})([0-9]{2})([0-9]{2})")
_ISO_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?)?"
    r" ?(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_EDIFACT_TS_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})?")
_HS_STRIP = re.compile(r"[. ]")
_UTC = dt.UTC


@dataclass(frozen=True)
class Problem:
    """Why one field of one record cannot be stored, in words an officer understands."""

    field: str
    reason: str
    value: Any = None


class Invalid(ValueError):
    """A value does not fit its field; the message is the reason shown to people."""


QUOTE_MAX = 60  # a reason quotes at most this much of a value: a hostile megabyte stays in `raw`


# HS 2022 is the only edition loaded (../shared/data/codelists/hs): a declaration from before 2022
# may carry an HS 2017 subheading that 2022 deleted or split, and the reason says so.
HS_EDITION_NOTE = (
    "the only edition loaded; a code from an earlier edition, e.g. HS 2017, must be re-coded to HS 2022"
)


def quoted(value: Any) -> str:
    """The value as a reason quotes it: in quotes, cut short with "…" when long."""
    text = _text(value)
    return f"'{text}'" if len(text) <= QUOTE_MAX else f"'{text[:QUOTE_MAX]}…'"


# ---- per-type coercion -------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        number = int(value)
    else:
        m = _INT_RE.fullmatch(_text(value))
        if not m:
            raise Invalid(f"{quoted(value)} is not a whole number")
        sign, digits = m.group(1)[:1], m.group(1).lstrip("+-").lstrip("0") or "0"
        if len(digits) > len(str(INT_LIMIT)):
            # too large in any case, and Python refuses to read more than 4,300 digits
            raise Invalid(f"{quoted(value)} is too large for a whole-number field (limit 10^18)")
        number = -int(digits) if sign == "-" else int(digits)
    if abs(number) >= INT_LIMIT:
        raise Invalid(f"{quoted(value)} is too large for a whole-number field (limit 10^18)")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = float(value)
    else:
        if not _NUMBER_RE.fullmatch(_text(value)):
            raise Invalid(f"{quoted(value)} is not a number")
        number = float(_text(value))
    if not math.isfinite(number):
        raise Invalid(f"{quoted(value)} is not a finite number")
    return number


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    else:
        if not _NUMBER_RE.fullmatch(_text(value)):
            raise Invalid(f"{quoted(value)} is not an amount (write it like 1234.56)")
        number = Decimal(_text(value))
    if not number.is_finite():
        raise Invalid(f"{quoted(value)} is not an amount (write it like 1234.56)")
    try:
        # Drop digits beyond 18 places first, as the vectorised path's decimal(38, 18) does.
        if number.as_tuple().exponent < -18:  # type: ignore[operator]
            number = number.quantize(_FRACTION_FLOOR, rounding=ROUND_DOWN)
        number = number.quantize(DECIMAL_PLACES, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise Invalid(f"{quoted(value)} is too large for an amount field (limit 10^14)") from None
    if abs(number) >= DECIMAL_LIMIT:
        raise Invalid(f"{quoted(value)} is too large for an amount field (limit 10^14)")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).translate(ASCII_LOWER)
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Invalid(f"{quoted(value)} is not a yes/no value (use true/false, yes/no or 1/0)")


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return (value.astimezone(_UTC) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    m = _DATE_RE.fullmatch(_text(value))
    try:
        if not m:
            raise ValueError
        y, mo, d = (g for g in m.groups() if g is not None)
        return dt.date(int(y), int(mo), int(d))
    except ValueError:
        raise Invalid(f"{quoted(value)} is not a valid date (write it as YYYY-MM-DD or YYYYMMDD)") from None


def _zone(text: str | None) -> dt.timezone:
    if not text or text in "Zz":
        return _UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError
    offset = dt.timedelta(hours=hours, minutes=minutes)
    return dt.timezone(-offset if text[0] == "-" else offset)


def _to_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(_UTC) if value.tzinfo else value.replace(tzinfo=_UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=_UTC)
    text = _text(value)
    try:
        m = _ISO_TS_RE.fullmatch(text)
        if m:
            y, mo, d, h, mi, s, frac, zone = m.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            stamp = dt.datetime(
                int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, _zone(zone)
            )
            return stamp.astimezone(_UTC)
        m = _EDIFACT_TS_RE.fullmatch(text)
        if m:
            y, mo, d, h, mi, s = m.groups()
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=_UTC)
    except (ValueError, OverflowError):
        pass
    raise Invalid(
        f"{quoted(value)} is not a valid date and time (write it as ISO 8601, e.g. 2024-05-01T08:30:00Z, "
        "or CCYYMMDDHHMM)"
    )


def _to_string(value: Any) -> str:
    return _text(value)


COERCERS = {
    "string": _to_string,
    "int": _to_int,
    "float": _to_float,
    "decimal": _to_decimal,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
}


def is_empty(value: Any) -> bool:
    """None, or text that is blank after trimming."""
    return value is None or (isinstance(value, str) and not value.strip(TRIM_CHARS))


def coerce(field: FieldDef, value: Any) -> Any:
    """Typed value of a non-empty ``value`` for ``field``; raises ``Invalid`` with the reason."""
    if isinstance(value, str):
        value = value.strip(TRIM_CHARS)
    return COERCERS[field.type](value)


# ---- checks on the typed value -----------------------------------------------------------------


def normalise_code(field: FieldDef, value: str) -> str:
    """The stored spelling of a coded value (upper-case codes, HS without dots, identifiers compact)."""
    if field.codelist == "hs":
        return _HS_STRIP.sub("", value)
    if field.codelist in ("country", "currency"):
        return value.translate(ASCII_UPPER)
    if field.codelist == "unlocode":
        return value.replace(" ", "").translate(ASCII_UPPER)
    if field.identifier:
        return NORMALISERS[field.identifier](value)
    return value


def check_code(field: FieldDef, value: str, codelists: CodeLists) -> None:
    """Raise ``Invalid`` if a normalised coded value is not in its code list or fails its check digit."""
    name = field.codelist
    if name == "hs":
        if not (value.isascii() and value.isdigit()):
            raise Invalid(f"HS code {quoted(value)} must contain digits only")
        if len(value) < 6:
            raise Invalid(f"HS code {quoted(value)} has fewer than 6 digits")
        if value[:6] not in codelists.hs6:
            raise Invalid(f"HS code {quoted(value)} is not in the HS 2022 nomenclature ({HS_EDITION_NOTE})")
    elif name == "country" and value not in codelists.country:
        raise Invalid(f"{quoted(value)} is not an ISO 3166 country code")
    elif name == "currency" and value not in codelists.currency:
        raise Invalid(f"{quoted(value)} is not an ISO 4217 currency code")
    elif name == "unlocode":
        if len(value) != 5 or not set(value[2:]) <= UNLOCODE_LOCATION_CHARS:
            raise Invalid(
                f"{quoted(value)} is not a UN/LOCODE"
                " (two-letter country and three-character place, e.g. CNSHA)"
            )
        if value[:2] not in codelists.unlocode:
            raise Invalid(f"UN/LOCODE {quoted(value)} names '{value[:2]}', which is not a UN/LOCODE country")
    if field.identifier and not IDENTIFIERS[field.identifier](value):
        raise Invalid(
            f"{quoted(value)} is not a valid {IDENTIFIER_NAMES[field.identifier]} (wrong form or check digit)"
        )


def enumeration_value(field: FieldDef, value: str) -> str:
    """The canonical spelling of an enumerated value, matched regardless of (ASCII) case."""
    assert field.values is not None
    folded = value.translate(ASCII_LOWER)
    for allowed in field.values:
        if allowed.translate(ASCII_LOWER) == folded:
            return allowed
    raise Invalid(f"{quoted(value)} is not one of: {', '.join(field.values)}")


def check_value(field: FieldDef, value: Any, codelists: CodeLists) -> tuple[Any, str | None]:
    """(stored value, None) when ``value`` fits ``field``; (None, reason) when it does not."""
    if is_empty(value):
        return None, ("a value is required" if field.required else None)
    try:
        typed = coerce(field, value)
        if field.type == "string":
            typed = normalise_code(field, typed)
            if field.values:
                typed = enumeration_value(field, typed)
            if field.codelist or field.identifier:
                check_code(field, typed, codelists)
            if field.max_length is not None and len(typed) > field.max_length:
                raise Invalid(
                    f"{quoted(typed)} is {len(typed)} characters long; at most {field.max_length} are allowed"
                )
        elif field.minimum is not None or field.maximum is not None:
            check_range(field, typed, value)
    except Invalid as exc:
        return None, str(exc)
    return typed, None


def check_range(field: FieldDef, typed: Any, value: Any) -> None:
    """A number outside the field's minimum or maximum (e.g. a negative mass) is refused."""
    if field.minimum is not None and typed < field.minimum:
        raise Invalid(f"{quoted(value)} is less than {field.minimum:g}, the smallest allowed")
    if field.maximum is not None and typed > field.maximum:
        raise Invalid(f"{quoted(value)} is more than {field.maximum:g}, the largest allowed")
