"""Identifiers with check digits: ISO 6346 containers, IMO ships, Mainland unified credit codes.

Our own small functions: ``sciti.model`` had no identifier module when this generator was written.
"""

from __future__ import annotations

import numpy as np

# ISO 6346 letter values skip multiples of 11 (11, 22, 33).
_ISO6346_VALUES = {}
_v = 10
for _c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _v % 11 == 0:
        _v += 1
    _ISO6346_VALUES[_c] = _v
    _v += 1
_ISO6346_VALUES.update({str(d): d for d in range(10)})


def iso6346_check_digit(code10: str) -> int:
    """Check digit of the first ten characters (owner code, category, serial) of a container number."""
    total = sum(_ISO6346_VALUES[ch] * (2**i) for i, ch in enumerate(code10.upper()))
    return total % 11 % 10


def iso6346_valid(number: str) -> bool:
    number = number.strip().upper()
    if len(number) != 11 or not number[:4].isalpha() or not number[4:].isdigit() or number[3] not in "UJZ":
        return False
    return iso6346_check_digit(number[:10]) == int(number[10])


def container_numbers(owners: list[str], serials: np.ndarray) -> list[str]:
    """Full container numbers for owner prefixes (3 letters + U) and 6-digit serials."""
    out = []
    for owner, serial in zip(owners, serials.tolist(), strict=True):
        body = f"{owner}{serial:06d}"
        out.append(f"{body}{iso6346_check_digit(body)}")
    return out


def imo_check_digit(six: int) -> int:
    """Check digit of an IMO ship number: digits weighted 7..2, sum mod 10."""
    digits = f"{six:06d}"
    return sum(int(d) * w for d, w in zip(digits, range(7, 1, -1), strict=True)) % 10


def imo_number(six: int) -> str:
    return f"IMO{six:06d}{imo_check_digit(six)}"


def imo_valid(text: str) -> bool:
    digits = text.upper().removeprefix("IMO").strip()
    return len(digits) == 7 and digits.isdigit() and imo_check_digit(int(digits[:6])) == int(digits[6])


# GB 32100-2015 unified social credit code alphabet (no I, O, S, V, Z) and weights.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc(body17: str) -> str:
    """Complete a 17-character Mainland unified social credit code with its check character."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS, strict=True))
    return body17 + _USCC_CHARS[(31 - total % 31) % 31]


def uscc_valid(code: str) -> bool:
    return len(code) == 18 and all(c in _USCC_CHARS for c in code) and uscc(code[:17]) == code
