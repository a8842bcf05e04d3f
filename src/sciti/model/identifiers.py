"""Identifier schemes with check digits: ISO 6346 container numbers and IMO ship numbers.

Each scheme has a pure per-value validator (used for single records) and a vectorised one over an
Arrow string array (used for tables), computed the same way so both give the same answer.
Validators expect a normalised value; ``normalise_container`` and ``normalise_imo`` produce it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ISO 6346 letter values: A=10 upwards, skipping multiples of 11 (11, 22, 33) so no letter
# collides with the modulus.
_LETTER_VALUES: dict[str, int] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1

# Equipment category identifier (4th letter): U freight container, J detachable equipment, Z trailer/chassis.
ISO6346_CATEGORIES = "UJZ"
_ISO6346_RE = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
_IMO_RE = re.compile(r"[0-9]{7}")
# Case is folded for ASCII letters only, as Arrow's ascii_upper does, so both paths agree.
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SEPARATORS = re.compile(r"[\t\n\f\r \-./]+")


def normalise_container(value: str) -> str:
    """Upper-case and drop spaces, hyphens, dots and slashes: ``csqu 305438-3`` -> ``CSQU3054383``."""
    return _SEPARATORS.sub("", value).translate(ASCII_UPPER)


def normalise_imo(value: str) -> str:
    """Upper-case, drop separators and a leading ``IMO`` prefix: ``IMO 9074729`` -> ``9074729``."""
    text = _SEPARATORS.sub("", value).translate(ASCII_UPPER)
    return text[3:] if text.startswith("IMO") else text


def iso6346_check_digit(prefix10: str) -> int:
    """Check digit of the first ten characters (owner code, category, serial) of a container number.

    Each character's value is weighted by 2**position; the sum modulo 11 is the digit, and a
    remainder of 10 is written as 0 (ISO 6346 advises owners not to issue such serials).
    """
    prefix = prefix10.upper()
    if len(prefix) != 10 or not _ISO6346_RE.fullmatch(prefix + "0"):
        raise ValueError(f"{prefix10!r} is not an owner code, category letter and six-digit serial")
    total = sum((_LETTER_VALUES[c] if c.isalpha() else int(c)) << i for i, c in enumerate(prefix))
    return total % 11 % 10


def iso6346_valid(value: str) -> bool:
    """True if ``value`` (normalised) is an ISO 6346 container number with the right check digit."""
    if not isinstance(value, str) or not _ISO6346_RE.fullmatch(value):
        return False
    return iso6346_check_digit(value[:10]) == int(value[10])


def imo_check_digit(prefix6: str) -> int:
    """Check digit of an IMO ship number: digits weighted 7, 6, 5, 4, 3, 2; last digit of the sum."""
    return sum(int(d) * w for d, w in zip(prefix6, range(7, 1, -1), strict=True)) % 10


def imo_valid(value: str) -> bool:
    """True if ``value`` (normalised, seven digits) is an IMO ship number with a correct check digit."""
    if not isinstance(value, str) or not _IMO_RE.fullmatch(value):
        return False
    return imo_check_digit(value[:6]) == int(value[6])


IDENTIFIERS: dict[str, Callable[[str], bool]] = {"iso6346": iso6346_valid, "imo": imo_valid}
NORMALISERS: dict[str, Callable[[str], str]] = {"iso6346": normalise_container, "imo": normalise_imo}
IDENTIFIER_NAMES: dict[str, str] = {
    "iso6346": "ISO 6346 container number",
    "imo": "IMO ship identification number",
}


# ---- vectorised versions, for validate_table ---------------------------------------------------

# Byte -> character value for ISO 6346; -1 marks a byte that may not appear.
_ISO_LUT = np.full(256, -1, dtype=np.int64)
for _c, _v in _LETTER_VALUES.items():
    _ISO_LUT[ord(_c)] = _v
_ISO_LUT[ord("0") : ord("9") + 1] = np.arange(10)
_IS_LETTER = np.zeros(256, dtype=bool)
_IS_LETTER[ord("A") : ord("Z") + 1] = True
_IS_CATEGORY = np.zeros(256, dtype=bool)
for _c in ISO6346_CATEGORIES:
    _IS_CATEGORY[ord(_c)] = True
_IS_DIGIT = np.zeros(256, dtype=bool)
_IS_DIGIT[ord("0") : ord("9") + 1] = True


def normalise_container_array(arr: pa.Array) -> pa.Array:
    return pc.ascii_upper(pc.replace_substring_regex(arr, r"[\t\n\f\r \-./]+", ""))


def normalise_imo_array(arr: pa.Array) -> pa.Array:
    text = pc.ascii_upper(pc.replace_substring_regex(arr, r"[\t\n\f\r \-./]+", ""))
    return pc.replace_substring_regex(text, r"^IMO", "")


def _fixed_width_bytes(arr: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of exactly ``width`` bytes as an (n, width) uint8 matrix, plus their positions."""
    fits = pc.fill_null(pc.equal(pc.binary_length(arr), width), False)
    positions = np.flatnonzero(fits.to_numpy(zero_copy_only=False))
    chosen = pc.cast(pc.take(arr, pa.array(positions, pa.int64())), pa.binary(width))
    data = np.frombuffer(
        chosen.buffers()[1], dtype=np.uint8, count=len(chosen) * width, offset=chosen.offset * width
    )
    return data.reshape(-1, width), positions


def _scatter(n: int, positions: np.ndarray, ok: np.ndarray) -> pa.BooleanArray:
    out = np.zeros(n, dtype=bool)
    out[positions] = ok
    return pa.array(out)


def iso6346_valid_array(arr: pa.Array) -> pa.BooleanArray:
    """Vectorised ``iso6346_valid`` over normalised strings; nulls give False."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    m, positions = _fixed_width_bytes(arr, 11)
    if not len(m):
        return _scatter(len(arr), positions, np.zeros(0, dtype=bool))
    shape_ok = _IS_CATEGORY[m[:, 3]].copy()
    total = np.zeros(len(m), dtype=np.int64)
    for i in range(10):
        shape_ok &= (_IS_LETTER if i < 3 else _IS_DIGIT if i > 3 else _IS_CATEGORY)[m[:, i]]
        total += _ISO_LUT[m[:, i]] << i
    shape_ok &= _IS_DIGIT[m[:, 10]]
    check = total % 11 % 10
    ok = shape_ok & (check == _ISO_LUT[m[:, 10]])
    return _scatter(len(arr), positions, ok)


def imo_valid_array(arr: pa.Array) -> pa.BooleanArray:
    """Vectorised ``imo_valid`` over normalised strings; nulls give False."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    m, positions = _fixed_width_bytes(arr, 7)
    if not len(m):
        return _scatter(len(arr), positions, np.zeros(0, dtype=bool))
    shape_ok = _IS_DIGIT[m].all(axis=1)
    digits = m.astype(np.int64) - ord("0")
    check = (digits[:, :6] * np.arange(7, 1, -1)).sum(axis=1) % 10
    ok = shape_ok & (check == digits[:, 6])
    return _scatter(len(arr), positions, ok)


_UNLOCODE_PLACE = np.zeros(256, dtype=bool)
for _c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789":
    _UNLOCODE_PLACE[ord(_c)] = True


def unlocode_form_array(arr: pa.Array) -> pa.BooleanArray:
    """Vectorised shape check of a UN/LOCODE: two letters, then three of A-Z or 2-9; nulls give False."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    m, positions = _fixed_width_bytes(arr, 5)
    if not len(m):
        return _scatter(len(arr), positions, np.zeros(0, dtype=bool))
    ok = _IS_LETTER[m[:, 0]] & _IS_LETTER[m[:, 1]]
    for i in range(2, 5):
        ok &= _UNLOCODE_PLACE[m[:, i]]
    return _scatter(len(arr), positions, ok)


ARRAY_VALIDATORS: dict[str, Callable[[pa.Array], pa.BooleanArray]] = {
    "iso6346": iso6346_valid_array,
    "imo": imo_valid_array,
}
ARRAY_NORMALISERS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "iso6346": normalise_container_array,
    "imo": normalise_imo_array,
}
