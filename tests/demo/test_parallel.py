"""The fast paths of generation: worker processes give the same bytes, vectorised and memoised
values equal the plain ones."""

from __future__ import annotations

import numpy as np

from sciti.demo import build_world, generate, load_scale
from sciti.demo.ids import container_numbers
from sciti.demo.variants import _company_forms, _person_forms, company_forms, person_forms
from sciti.model.identifiers import iso6346_check_digit
from tests.demo.test_determinism import digest


def test_all_feeds_in_two_workers_give_the_same_bytes(tmp_path) -> None:
    sc = load_scale(
        "tiny", {"declarations": 700, "road_cargo": 300, "passengers": 700, "chunk_size": 250, "days": 40}
    )
    one = generate(tmp_path / "one", sc, 11)
    two = generate(tmp_path / "two", sc, 11, workers=2)
    assert digest(one.out) == digest(two.out)
    assert one.counts == two.counts
    assert (
        set(one.cpu_seconds)
        == set(two.cpu_seconds)
        == {"setup", "entities", "declarations", "road", "passengers", "currency", "intel", "seclogs"}
    )


def test_vectorised_container_numbers_carry_the_model_check_digit() -> None:
    rng = np.random.default_rng(3)
    owners = [["MSCU", "MAEU", "CSQU", "OOLU", "TGHU"][i] for i in rng.integers(0, 5, 5000)]
    numbers = container_numbers(owners, rng.integers(0, 10**6, 5000))
    assert [int(c[10]) for c in numbers] == [iso6346_check_digit(c[:10]) for c in numbers]


def test_memoised_forms_are_those_of_the_entity_at_hand() -> None:
    """Two worlds share entity ids; each entity still gets its own forms from the memo."""
    for seed in (1, 2, 1):
        world = build_world(load_scale("tiny"), seed)
        assert all(company_forms(c, world.data) == _company_forms(c, world.data) for c in world.companies)
        assert all(person_forms(p, world.data) == _person_forms(p, world.data) for p in world.persons)
