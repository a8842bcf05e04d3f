"""Random streams: one per feed and chunk, so feeds are independent and every chunk reproducible.

A stream is keyed by (seed, feed name, chunk number) through numpy's SeedSequence: changing the
size of one feed never shifts the random numbers another feed sees, and chunk k of a feed gives
the same numbers whether or not chunks before it were generated in this process.
"""

from __future__ import annotations

import zlib

import numpy as np


def feed_key(feed: str) -> int:
    """Stable 32-bit number for a feed name (Python's hash() is salted per process)."""
    return zlib.crc32(feed.encode("utf-8"))


def stream(seed: int, feed: str, chunk: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(feed_key(feed), chunk)))
