"""Same seed, same bytes; another seed, another world; feeds do not disturb each other."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sciti.demo import DemoError, generate, load_scale


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tiny_world, tmp_path) -> None:
    again = generate(tmp_path / "again", "tiny", 7)
    assert digest(again.out) == digest(tiny_world.out)


def test_worker_processes_give_the_same_bytes(tmp_path) -> None:
    sc = load_scale("tiny", {"declarations": 900, "road_cargo": 500, "chunk_size": 300})
    one = generate(tmp_path / "one", sc, 4, feeds={"declarations", "road", "currency"})
    two = generate(tmp_path / "two", sc, 4, feeds={"declarations", "road", "currency"}, workers=2)
    assert digest(one.out) == digest(two.out)
    assert one.counts == two.counts


def test_overwrite_replaces_the_previous_world(tiny_world, tmp_path) -> None:
    sc = load_scale("tiny", {"declarations": 300})
    first = digest(generate(tmp_path / "w", sc, 1, feeds={"declarations"}).out)
    again = digest(generate(tmp_path / "w", sc, 1, feeds={"declarations"}, overwrite=True).out)
    assert first == again  # nothing appended to the old files


def test_another_seed_gives_another_world(tmp_path) -> None:
    sc = load_scale("tiny", {"declarations": 300})
    a = digest(generate(tmp_path / "a", sc, 1, feeds={"declarations"}).out)
    b = digest(generate(tmp_path / "b", sc, 2, feeds={"declarations"}).out)
    assert a["declarations/csv/declarations.csv"] != b["declarations/csv/declarations.csv"]


def test_feeds_are_independent_streams(tmp_path) -> None:
    """Changing the size of one feed leaves the others byte-identical."""
    small = digest(
        generate(tmp_path / "s", load_scale("tiny", {"passengers": 200}), 5, feeds={"road", "passengers"}).out
    )
    large = digest(
        generate(tmp_path / "l", load_scale("tiny", {"passengers": 900}), 5, feeds={"road", "passengers"}).out
    )
    assert small["road/road_cargo.jsonl"] == large["road/road_cargo.jsonl"]
    assert small["passengers/api_records.jsonl"] != large["passengers/api_records.jsonl"]


@pytest.mark.parametrize(
    ("scale", "overrides"),
    [("huge", {}), ("tiny", {"bogus": 1}), ("tiny", {"rates": {"undervaluation": 1.5}})],
)
def test_bad_parameters_are_refused_with_a_remedy(scale, overrides) -> None:
    with pytest.raises(DemoError) as err:
        load_scale(scale, overrides)
    assert err.value.remedy


def test_refuses_a_folder_that_is_not_empty(tmp_path) -> None:
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(DemoError):
        generate(tmp_path, "tiny", 1)
    assert (tmp_path / "x.txt").read_text() == "keep me"
