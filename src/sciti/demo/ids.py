"""Identifiers the world needs: containers and ships (check digits from the model), Mainland credit codes."""

from __future__ import annotations

import numpy as np

from sciti.model import identifiers as _ids
from sciti.model.identifiers import iso6346_check_digit


def iso6346_valid(number: str) -> bool:
    """Container number check as written in a feed (spaces, lower case allowed)."""
    return _ids.iso6346_valid(_ids.normalise_container(number))


def imo_valid(text: str) -> bool:
    """IMO number check as written in a feed (``IMO`` prefix allowed)."""
    return _ids.imo_valid(_ids.normalise_imo(text))


def _letter_values() -> dict[str, int]:
    """ISO 6346 letter values: A = 10 upwards, skipping multiples of 11."""
    values, v = {}, 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        v += v % 11 == 0
        values[ch], v = v, v + 1
    return values


_LETTERS = _letter_values()


def container_numbers(owners: list[str], serials: np.ndarray) -> list[str]:
    """Full container numbers for owner prefixes (3 letters + U) and 6-digit serials.

    Vectorised (a large world has hundreds of thousands): the check sum is the owner code's part,
    the same for every number of one owner, plus the serial digits weighted 2**4 .. 2**9.
    """
    serials = np.asarray(serials, dtype=np.int64)
    owner_part = {o: sum(_LETTERS[c] << i for i, c in enumerate(o)) for o in set(owners)}
    total = np.array([owner_part[o] for o in owners], dtype=np.int64)
    for i in range(6):  # serial digit i (from the left) sits at position 4 + i
        total += (serials // 10 ** (5 - i) % 10) << (4 + i)
    check = total % 11 % 10
    text = np.char.add(
        np.char.add(np.array(owners, dtype="<U4"), np.char.zfill(serials.astype(str), 6)), check.astype(str)
    )
    return text.tolist()


def imo_check_digit(six: int) -> int:
    """Check digit of an IMO ship number given its first six digits as a number."""
    return _ids.imo_check_digit(f"{six:06d}")


def imo_number(six: int) -> str:
    return f"IMO{six:06d}{imo_check_digit(six)}"


__all__ = [
    "container_numbers",
    "imo_check_digit",
    "imo_number",
    "imo_valid",
    "iso6346_check_digit",
    "iso6346_valid",
    "uscc",
    "uscc_valid",
]


# GB 32100-2015 unified social credit code alphabet (no I, O, S, V, Z) and weights.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc(body17: str) -> str:
    """Complete a 17-character Mainland unified social credit code with its check character."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS, strict=True))
    return body17 + _USCC_CHARS[(31 - total % 31) % 31]


def uscc_valid(code: str) -> bool:
    return len(code) == 18 and all(c in _USCC_CHARS for c in code) and uscc(code[:17]) == code
