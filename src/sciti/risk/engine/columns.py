"""Arrow columns for batch assessments, built without a Python object per record.

Most records of a batch share their words (the model line, no rule reasons), so a column keeps
a default per unit and materialises only the units that differ (``Sparse``); ids are written into
one buffer; lanes stay severity codes until the column is built.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.risk.lanes import LANES

_LANE_ARRAY = np.array(LANES, dtype=object)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.stack([np.repeat(_HEX, 16), np.tile(_HEX, 16)], axis=1)  # byte -> its two hex digits


ID_PREFIX = 24  # a batch's ids share their first 24 hex digits: 12 of milliseconds, 12 random


def batch_prefix(at: datetime) -> str:
    """The id prefix of one batch: unique to it, and sorting by time like the real-time ids."""
    return f"{int(at.timestamp() * 1000):012x}{os.urandom(6).hex()}"


def assessment_ids(prefix: str, m: int) -> pa.Array:
    """``f"{prefix}{i:08x}"`` for i < m, written into one buffer (no Python string per row)."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = len(head) + 8
    if m >= 2**32 or (m + 1) * width >= 2**31:
        raise ValueError(f"{m} assessments in one batch: split the table")
    buf = np.empty((m, width), dtype=np.uint8)
    buf[:, : len(head)] = head
    # Each byte of i (big-endian) becomes its two hex digits through one lookup.
    digits = _HEX_PAIRS[np.arange(m, dtype=">u4").view(np.uint8).reshape(m, 4)]
    buf[:, len(head) :] = digits.reshape(m, 8)
    offsets = np.arange(0, (m + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(buf))


def all_distinct(ids: pa.Array | pa.ChunkedArray) -> bool:
    """Whether no id repeats (and none is NULL).

    Hashing short strings in numpy (64 bits, as one word per 8 bytes) is several times cheaper
    than Arrow's exact count; ids whose hashes all differ are all different. Only when two
    hashes meet, or the ids are not short text, does Arrow count.
    """
    n = len(ids)
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    if n and not arr.null_count and pa.types.is_string(arr.type):
        hashed = text_hashes(arr)
        if hashed is not None:
            ordered = np.sort(hashed)  # (np.unique is many times slower here)
            if (ordered[1:] != ordered[:-1]).all():
                return True
    return bool(pc.count_distinct(ids).as_py() == n)


def text_hashes(arr: pa.Array, widest: int = 64) -> np.ndarray | None:
    """A 64-bit hash of each string of ``arr`` (length included), None for strings over ``widest`` bytes.

    Each string is read as 8-byte words straight from the data buffer (unaligned reads; the bytes
    past a string's end are masked off), so the work is one gather per word, not per byte.
    """
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=arr.offset + n + 1)[arr.offset :]
    data = arr.buffers()[2]
    lengths = np.diff(offsets).astype(np.int64)
    width = int(lengths.max()) if n else 0
    if width > widest or data is None or width == 0:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    padded = np.zeros(len(raw) + 8, dtype=np.uint8)  # a word may start up to 7 bytes before the end
    padded[: len(raw)] = raw
    words = np.ndarray((len(raw) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    starts = offsets[:-1].astype(np.int64)
    hashed = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for k in range(0, width, 8):
            left = np.clip(lengths - k, 0, 8)
            w = words[np.minimum(starts + k, len(raw))] & _LOW_BYTES[left]
            hashed = (hashed ^ w) * np.uint64(0xBF58476D1CE4E5B9)
            hashed ^= hashed >> np.uint64(31)
    return hashed


_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the k low bytes of a word


class Lanes:
    """A lane per unit, kept as its severity; text only when the column is built."""

    def __init__(self, severity: np.ndarray):
        self.severity = severity

    def __len__(self) -> int:
        return len(self.severity)

    def __getitem__(self, u: Any) -> str:
        return str(_LANE_ARRAY[self.severity[int(u)]])

    def __setitem__(self, u: Any, lane: str) -> None:
        self.severity[int(u)] = LANES.index(lane)

    def arrow(self) -> pa.Array:
        return _LANE_TEXTS.take(pa.array(self.severity))


_LANE_TEXTS = pa.array(list(LANES), pa.string())


class LazyTexts:
    """``texts[u]`` as a Python string only for the units that ask (Arrow keeps the rest)."""

    def __init__(self, arr: pa.Array):
        self.arr = arr

    def __getitem__(self, u: int) -> str:
        return str(self.arr[u].as_py())


class Sparse:
    """A per-unit column where few units differ from a default: only those are Python objects.

    ``col[u]`` materialises unit u's value (from ``make(u)``) so it can be changed in place;
    :meth:`add` puts items in front of (or after) the default of many units at once, as Arrow
    arrays. :meth:`list_array` / :meth:`text_array` build the Arrow column with every other unit's
    value written by Arrow, not by a Python object per row. A materialised unit ignores what
    :meth:`add` gave it: its Python value is the whole of it.
    """

    def __init__(self, m: int, make: Any, base: pa.Array | None = None):
        self.m, self.make, self.base = m, make, base  # base: each unit's one default item (or none)
        self.own: dict[int, Any] = {}
        self.added: dict[bool, list[tuple[np.ndarray, pa.Array]]] = {False: [], True: []}

    def __len__(self) -> int:
        return self.m

    def __getitem__(self, u: Any) -> Any:
        u = int(u)
        if u not in self.own:
            self.own[u] = self.make(u)
        return self.own[u]

    def __setitem__(self, u: Any, value: Any) -> None:
        self.own[int(u)] = value

    def add(self, units: np.ndarray, values: pa.Array, *, after: bool = False) -> None:
        """Item ``values[k]`` for unit ``units[k]``, before the default (after it with ``after``).

        Items reach a unit in the order they are added (and in order within one call).
        """
        if len(units):
            self.added[after].append((np.asarray(units, dtype=np.int64), values))

    def list_array(self) -> pa.Array:
        """list<string>: added items around ``[base[u]]`` (``[]`` without a base), or a unit's own."""
        m = self.m
        owned = np.zeros(m, dtype=bool)
        touched = np.asarray(sorted(self.own), dtype=np.int64)
        owned[touched] = True
        before_u, before_v = self._gathered(self.added[False], owned)
        after_u, after_v = self._gathered(self.added[True], owned)
        n_before = np.bincount(before_u, minlength=m)
        n_base = np.zeros(m, dtype=np.int64) if self.base is None else (~owned).astype(np.int64)
        lengths = n_before + n_base + np.bincount(after_u, minlength=m)
        own_lengths = np.asarray([len(self.own[u]) for u in touched.tolist()], dtype=np.int64)
        lengths[touched] = own_lengths
        offsets = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] >= 2**31:
            raise ValueError("too many items in one batch: split the table")
        # One pool of every item (the base's distinct texts, added, own) and where each lands.
        base_words, base_codes = _codes_of(self.base, m)
        own_values = pa.array([v for u in touched.tolist() for v in self.own[u]], pa.string())
        pool = pa.concat_arrays([base_words, before_v, after_v, own_values])
        idx = np.empty(int(offsets[-1]), dtype=np.int64)
        start = offsets[:-1]
        at = len(base_words)
        idx[start[before_u] + _rank(before_u)] = at + np.arange(len(before_u))
        at += len(before_u)
        if self.base is not None:
            plain = np.flatnonzero(~owned)
            idx[start[plain] + n_before[plain]] = base_codes[plain]
        idx[start[after_u] + n_before[after_u] + n_base[after_u] + _rank(after_u)] = at + np.arange(
            len(after_u)
        )
        at += len(after_u)
        if own_lengths.sum():
            starts = np.repeat(start[touched], own_lengths)
            idx[starts + _rank(np.repeat(touched, own_lengths))] = at + np.arange(int(own_lengths.sum()))
        values = pool.take(pa.array(idx))
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)

    @staticmethod
    def _gathered(added: list[tuple[np.ndarray, pa.Array]], owned: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """The added (unit, item) pairs in order, without the units that have their own value."""
        if not added:
            return np.empty(0, dtype=np.int64), pa.array([], pa.string())
        units = np.concatenate([u for u, _ in added])
        values = pa.concat_arrays([v.cast(pa.string()) for _, v in added])
        keep = ~owned[units]
        if keep.all():
            return units, values
        return units[keep], values.filter(pa.array(keep))

    def text_array(self, default: str) -> pa.Array:
        touched = sorted(self.own)
        idx = np.zeros(self.m, dtype=np.int64)
        idx[np.asarray(touched, dtype=np.int64)] = np.arange(1, len(touched) + 1)
        return pa.array([default] + [self.own[u] for u in touched], pa.string()).take(pa.array(idx))


def _rank(units: np.ndarray) -> np.ndarray:
    """For each item, how many earlier items have the same unit (0 for a unit's first)."""
    if len(units) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(units, kind="stable")
    ordered = units[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(units)), 0))
    rank = np.empty(len(units), dtype=np.int64)
    rank[order] = np.arange(len(units)) - run_start
    return rank


def _codes_of(base: pa.Array | None, m: int) -> tuple[pa.Array, np.ndarray]:
    """(distinct texts, code of each unit) of a per-unit text column; dictionary arrays as they are."""
    if base is None:
        return pa.array([], pa.string()), np.zeros(m, dtype=np.int64)
    if pa.types.is_dictionary(base.type) and base.null_count == 0:
        return base.dictionary.cast(pa.string()), np.asarray(base.indices.to_numpy(), dtype=np.int64)
    return base.cast(pa.string()), np.arange(m, dtype=np.int64)


__all__ = ["Lanes", "LazyTexts", "Sparse", "all_distinct", "assessment_ids", "text_hashes"]
