"""Vectorised validation of one column: Arrow kernels for the common case, rules.py for the rest.

Each type has a fast path that parses a whole column with one Arrow cast. When a column holds a
value the cast refuses, a stricter pattern picks the values Arrow parses exactly as ``rules``
would, casts those, and leaves the others "unparsed". Unparsed values (usually few) go through
``rules.check_value`` once per distinct value, which yields either the stored value or the
reason. Soundness rule for every kernel here: whatever Arrow accepts, ``rules`` accepts with the
same result; what Arrow cannot decide is handed to ``rules``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model.codelists import CodeLists
from sciti.model.identifiers import ARRAY_NORMALISERS, ARRAY_VALIDATORS, unlocode_form_array
from sciti.model.rules import FALSE_WORDS, TRIM_CHARS, TRUE_WORDS, check_value
from sciti.model.schema import ARROW_TYPES, FieldDef

_WIDE_DECIMAL = pa.decimal128(38, 18)
# Strict patterns whose matches the Arrow casts parse exactly like rules.py (no overflow, no sign '+').
_INT_STRICT = r"^-?[0-9]{1,18}$"
_FLOAT_STRICT = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
_DECIMAL_STRICT = r"^-?[0-9]{1,14}(\.[0-9]{1,18})?$"
_BOOL_WORDS = pa.array(TRUE_WORDS + FALSE_WORDS)
_ZONE_RE = re.compile(r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$")
_MONTH_DAYS = pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int64())
_DAY_ONE = pa.scalar(dt.date(1, 1, 1), pa.date32())
_YEAR_ONE = pa.scalar(dt.datetime(1, 1, 1, tzinfo=dt.UTC), ARROW_TYPES["timestamp"])
# Forms of dates and times the gated path casts (valid ranges; day-of-month checked apart).
_DATE_STRICT = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_TIMESTAMP_STRICT = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]"
    r"(\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])?$"
)
_ZONE_AT_END = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"


@dataclass
class ColumnResult:
    """Typed values (null where rejected or empty) and the rows rejected with their reasons."""

    values: pa.Array
    bad_rows: list[int]
    reasons: list[str]


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _ascii_only(arr: pa.Array) -> bool:
    """True when every byte of the text buffer is ASCII (cheap: one pass over raw bytes)."""
    data = arr.buffers()[2]
    return data is None or not len(data) or int(np.frombuffer(data, dtype=np.uint8).max()) < 128


def clean_text(arr: pa.Array) -> pa.Array:
    """Trim and turn blank text into null, as ``rules.is_empty`` does."""
    if pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    # ASCII trimming is several times faster; the Unicode spaces only need a pass when present.
    trimmed = pc.ascii_trim_whitespace(arr)
    if not _ascii_only(trimmed):
        trimmed = pc.utf8_trim(trimmed, characters=TRIM_CHARS)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _upper(arr: pa.Array) -> pa.Array:
    return pc.ascii_upper(arr)  # ASCII letters only, like rules.py


def _try(fn: Any, *args: Any) -> pa.Array | None:
    try:
        return fn(*args)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _null_where(values: pa.Array, reject: pa.Array) -> pa.Array:
    reject = pc.fill_null(reject, False)
    if not pc.any(reject).as_py():
        return values  # the usual case: no copy of a clean column
    return pc.if_else(reject, pa.scalar(None, values.type), values)


def _strict_cast(text: pa.Array, pattern: str, target: pa.DataType) -> pa.Array:
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), target)


def _parse_int(text: pa.Array) -> pa.Array:
    values = _try(pc.cast, text, pa.int64())
    if values is None:
        return _strict_cast(text, _INT_STRICT, pa.int64())
    limit = 10**18
    return _null_where(values, pc.or_(pc.greater_equal(values, limit), pc.less_equal(values, -limit)))


def _parse_float(text: pa.Array) -> pa.Array:
    values = _try(pc.cast, text, pa.float64())
    if values is None:
        values = _strict_cast(text, _FLOAT_STRICT, pa.float64())
    return _null_where(values, pc.invert(pc.is_finite(values)))


def _decimal_wide(text: pa.Array) -> pa.Array:
    """Exact path: parse at 18 places, round half-to-even to 4, keep |v| < 10**14."""
    wide = _try(pc.cast, text, _WIDE_DECIMAL)
    if wide is None:
        wide = _strict_cast(text, _DECIMAL_STRICT, _WIDE_DECIMAL)
    rounded = pc.round(wide, ndigits=4, round_mode="half_to_even")
    in_range = pc.less(pc.abs(rounded), pc.cast(pa.scalar(10**14, pa.decimal128(38, 0)), _WIDE_DECIMAL))
    return pc.cast(_null_where(rounded, pc.invert(in_range)), ARROW_TYPES["decimal"])


def _parse_decimal(text: pa.Array) -> pa.Array:
    """Amounts through float64 where that is provably exact, the exact decimal path elsewhere.

    Arrow's decimal casts are slow. For |v * 10**4| < 2**40 a float64 parse is off by less than
    2.5e-4 units of the 4th place, so rounding v * 10**4 to the nearest integer gives exactly the
    half-to-even decimal result unless the value sits within 1e-3 of a tie; those rows, larger
    values and text the float cast refuses take the exact path.
    """
    floats = _try(pc.cast, text, pa.float64())
    if floats is None:
        floats = _strict_cast(text, _DECIMAL_STRICT, pa.float64())
    scaled = pc.fill_null(floats, 0.0).to_numpy(zero_copy_only=False) * 1e4
    with np.errstate(invalid="ignore"):
        units = np.rint(scaled)
        exact = np.isfinite(scaled) & (np.abs(scaled) < 2.0**40) & (np.abs(scaled - units) < 0.499)
    exact &= pc.is_valid(floats).to_numpy(zero_copy_only=False)
    unscaled = np.where(exact, units, 0).astype(np.int64)
    # decimal128 storage: 16-byte little-endian two's complement (low word, sign-extended high word).
    words = np.empty((len(unscaled), 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    validity = pa.array(exact).buffers()[1]
    values = pa.Array.from_buffers(
        ARROW_TYPES["decimal"], len(unscaled), [validity, pa.py_buffer(words.tobytes())]
    )
    rest = np.flatnonzero(~exact & pc.is_valid(text).to_numpy(zero_copy_only=False))
    if len(rest):
        mask = np.zeros(len(values), dtype=bool)
        mask[rest] = True
        values = pc.replace_with_mask(values, pa.array(mask), _decimal_wide(pc.take(text, pa.array(rest))))
    return values


def _parse_bool(text: pa.Array) -> pa.Array:
    index = pc.index_in(pc.ascii_lower(text), value_set=_BOOL_WORDS)
    return pc.less(index, len(TRUE_WORDS))


def _cast_date(text: pa.Array) -> pa.Array | None:
    return _try(pc.cast, text, pa.date32())


def _has_zone(text: pa.Array) -> bool:
    """Whether most of the first values carry a zone (Z or an offset): the cast to try first."""
    sample = [v for v in pc.drop_null(text.slice(0, 64)).to_pylist()]
    return sum(_ZONE_RE.search(v) is not None for v in sample) * 2 > len(sample)


def _cast_timestamp(text: pa.Array) -> pa.Array | None:
    # Arrow takes long to refuse a cast of text in the other form (zoned vs naive), so only the
    # form of the first value is tried; mixed or bad columns go to the gated path.
    if _has_zone(text):
        return _try(pc.cast, text, ARROW_TYPES["timestamp"])
    naive = _try(pc.cast, text, pa.timestamp("us"))
    return None if naive is None else pc.cast(naive, ARROW_TYPES["timestamp"])  # naive = UTC


def _calendar_ok(text: pa.Array) -> pa.Array:
    """Whether the ``YYYY-MM-DD`` prefix (already matched by a pattern) is a real date, year 1 onwards."""
    year = pc.cast(pc.utf8_slice_codeunits(text, 0, 4), pa.int64())
    month = pc.cast(pc.utf8_slice_codeunits(text, 5, 7), pa.int64())
    day = pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64())
    leap = pc.and_(
        pc.equal(pc.bit_wise_and(year, 3), 0),
        pc.or_(pc.not_equal(pc.divide(year, 100) * 100, year), pc.equal(pc.divide(year, 400) * 400, year)),
    )
    longest = pc.add(pc.take(_MONTH_DAYS, month), pc.cast(pc.and_(leap, pc.equal(month, 2)), pa.int64()))
    return pc.and_(pc.less_equal(day, longest), pc.greater_equal(year, 1))


def _gated(text: pa.Array, pattern: str, cast: Any, target: pa.DataType) -> pa.Array:
    """Cast only the values matching ``pattern`` with a real calendar date; the rest stay null."""
    ok = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    gated = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    ok = pc.fill_null(_calendar_ok(gated), False)
    values = cast(pc.if_else(ok, gated, pa.scalar(None, pa.string())))
    return values if values is not None else pa.nulls(len(text), target)


def _parse_date(text: pa.Array) -> pa.Array:
    values = _cast_date(text)
    if values is None:
        values = _gated(text, _DATE_STRICT, _cast_date, pa.date32())
    # Arrow reads year 0; Python's date cannot hold it, so rules.py rejects it.
    return _null_where(values, pc.less(values, _DAY_ONE))


def _zoned_cast(text: pa.Array) -> pa.Array | None:
    # Gated text is either zoned or naive: give the naive ones a Z so one cast reads them all.
    zoned = pc.fill_null(pc.match_substring_regex(text, _ZONE_AT_END), False)
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, pa.scalar("Z"), ""))
    return _try(pc.cast, text, ARROW_TYPES["timestamp"])


def _parse_timestamp(text: pa.Array) -> pa.Array:
    values = _cast_timestamp(text)
    if values is None:
        values = _gated(text, _TIMESTAMP_STRICT, _zoned_cast, ARROW_TYPES["timestamp"])
    # Python's datetime starts at year 1; leave anything earlier to rules.py to reject.
    return _null_where(values, pc.less(values, _YEAR_ONE))


def _string_checks(field: FieldDef, text: pa.Array, codelists: CodeLists) -> tuple[pa.Array, pa.Array | None]:
    """Normalised text and a mask of rows that fail a string check (None when nothing to check)."""
    fails: list[pa.Array] = []
    if field.codelist == "hs":
        text = pc.replace_substring(pc.replace_substring(text, ".", ""), " ", "")
        six = pc.utf8_slice_codeunits(text, 0, 6)
        ok = pc.and_(
            pc.and_(pc.ascii_is_decimal(text), pc.greater_equal(pc.utf8_length(text), 6)),
            pc.is_in(six, value_set=codelists.value_set("hs")),
        )
        fails.append(pc.invert(ok))
    elif field.codelist in ("country", "currency"):
        text = _upper(text)
        fails.append(pc.invert(pc.is_in(text, value_set=codelists.value_set(field.codelist))))
    elif field.codelist == "unlocode":
        text = _upper(pc.replace_substring(text, " ", ""))
        ok = pc.and_(
            unlocode_form_array(text),
            pc.is_in(pc.utf8_slice_codeunits(text, 0, 2), value_set=codelists.value_set("unlocode")),
        )
        fails.append(pc.invert(ok))
    if field.identifier:
        text = ARRAY_NORMALISERS[field.identifier](text)
        fails.append(pc.invert(ARRAY_VALIDATORS[field.identifier](text)))
    if field.values:
        allowed = pa.array(field.values)
        index = pc.index_in(pc.ascii_lower(text), value_set=pc.ascii_lower(allowed))
        text = pc.if_else(pc.is_null(index), text, pc.take(allowed, index))
        fails.append(pc.is_null(index))
    if field.max_length is not None:
        fails.append(pc.greater(pc.utf8_length(text), field.max_length))
    if not fails:
        return text, None
    mask = fails[0]
    for more in fails[1:]:
        mask = pc.or_(mask, more)
    return text, pc.fill_null(mask, False)


_PARSERS = {
    "int": _parse_int,
    "float": _parse_float,
    "decimal": _parse_decimal,
    "bool": _parse_bool,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}


def _direct(field: FieldDef, column: pa.Array) -> pa.Array | None:
    """Values of an already-typed column cast straight to the field's type, or None to go through text.

    Only casts that give the same value as rules.py are taken; the rest (bool to int, float to
    decimal, fractional float to int ...) go through text so both paths decide alike.
    """
    kind, source = field.type, column.type
    if kind == "bool":
        return column if pa.types.is_boolean(source) else None
    if pa.types.is_boolean(source):
        return None
    if kind in ("int", "float") and (pa.types.is_integer(source) or pa.types.is_floating(source)):
        values = _try(pc.cast, column, field.arrow_type)
        if values is not None and kind == "float":
            values = _null_where(values, pc.invert(pc.is_finite(values)))
        if values is not None and kind == "int":
            values = _null_where(values, pc.greater_equal(pc.abs(values), 10**18))
        return values
    if kind == "decimal" and (pa.types.is_integer(source) or pa.types.is_decimal(source)):
        return _try(pc.cast, column, field.arrow_type)
    if kind in ("date", "timestamp") and (pa.types.is_timestamp(source) or pa.types.is_date(source)):
        if pa.types.is_timestamp(source):
            column = pc.cast(column, pa.timestamp(source.unit, tz="UTC"))  # naive taken as UTC
        return _try(lambda c: pc.cast(c, field.arrow_type, safe=False), column)
    return None


def _bound(values: pa.Array, bound: float) -> pa.Scalar:
    # whole numbers against a whole bound: Arrow refuses to compare large int64 with a float
    return pa.scalar(int(bound), values.type) if pa.types.is_integer(values.type) else pa.scalar(float(bound))


def _out_of_range(field: FieldDef, values: pa.Array) -> pa.Array:
    low = None if field.minimum is None else pc.less(values, _bound(values, field.minimum))
    high = None if field.maximum is None else pc.greater(values, _bound(values, field.maximum))
    if low is None or high is None:
        return low if high is None else high
    return pc.or_(low, high)


def validate_column(
    field: FieldDef, column: pa.Array | pa.ChunkedArray, codelists: CodeLists
) -> ColumnResult:
    """Coerce and check one column for ``field``; see the module docstring for the method."""
    column = _combine(column)
    target = field.arrow_type
    if pa.types.is_null(column.type):
        column = pa.nulls(len(column), pa.string())
    is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    values = None if is_text else _direct(field, column)
    if values is not None:
        present = pc.is_valid(column)
    else:
        text = clean_text(column if is_text else pc.cast(column, pa.string()))
        present = pc.is_valid(text)
        if field.type == "string":
            values, failing = _string_checks(field, text, codelists)
            if failing is not None:
                values = _null_where(values, failing)
        else:
            values = _PARSERS[field.type](text)
    if field.minimum is not None or field.maximum is not None:
        values = _null_where(values, _out_of_range(field, values))  # rules.check_range words why
    unparsed = pc.and_(present, pc.is_null(values)).to_numpy(zero_copy_only=False)
    bad_rows: list[int] = []
    reasons: list[str] = []
    if unparsed.any():
        values, bad_rows, reasons = _per_value(field, column, values, np.flatnonzero(unparsed), codelists)
    if field.required:
        missing = np.flatnonzero(pc.invert(present).to_numpy(zero_copy_only=False))
        if len(missing):
            bad_rows += missing.tolist()
            reasons += ["a value is required"] * len(missing)
    return ColumnResult(values if values.type == target else values.cast(target), bad_rows, reasons)


def _per_value(
    field: FieldDef, column: pa.Array, values: pa.Array, rows: np.ndarray, codelists: CodeLists
) -> tuple[pa.Array, list[int], list[str]]:
    """Run rules.check_value on the unparsed rows (once per distinct value) and patch the results in."""
    originals = pc.take(column, pa.array(rows, pa.int64())).to_pylist()
    seen: dict[Any, tuple[Any, str | None]] = {}
    patched_rows: list[int] = []
    patched: list[Any] = []
    bad_rows: list[int] = []
    reasons: list[str] = []
    for row, original in zip(rows.tolist(), originals, strict=True):
        try:
            outcome = seen[original]
        except (KeyError, TypeError):
            outcome = check_value(field, original, codelists)
            with contextlib.suppress(TypeError):  # unhashable originals are simply not cached
                seen[original] = outcome
        value, reason = outcome
        if reason is None:
            patched_rows.append(row)
            patched.append(value)
        else:
            bad_rows.append(row)
            reasons.append(reason)
    if patched_rows:
        mask = np.zeros(len(values), dtype=bool)
        mask[patched_rows] = True
        values = pc.replace_with_mask(values, pa.array(mask), pa.array(patched, values.type))
    return values, bad_rows, reasons
