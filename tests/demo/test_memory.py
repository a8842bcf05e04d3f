"""Generation streams: peak memory does not grow with the number of declarations."""

from __future__ import annotations

import tracemalloc

from sciti.demo import generate, load_scale


def peak_bytes(tmp_path, declarations: int) -> int:
    overrides = {
        "declarations": declarations,
        "chunk_size": 200,
        "xml_share": 0.01,
        "companies": 80,
        "persons": 100,
    }
    sc = load_scale("tiny", overrides)
    tracemalloc.start()
    try:
        generate(tmp_path / str(declarations), sc, 3, feeds={"declarations"})
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_bounded_by_the_chunk_not_the_world(tmp_path) -> None:
    few, many = peak_bytes(tmp_path, 400), peak_bytes(tmp_path, 1600)
    assert many < 1.5 * few, (few, many)
