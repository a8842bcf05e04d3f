"""The batch path's vectorised helpers give exactly the per-record answers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sciti.risk.engine.assessment import combine, combine_many, percent
from sciti.risk.lanes import KindLanes, LanePolicy


@pytest.mark.parametrize("share", [0.0, 0.05, 0.5, 1.0])
def test_sample_many_equals_one_by_one(share: float) -> None:
    policy = LanePolicy(kinds={"declaration": KindLanes({"red": 80.0})}, sample_share=share, sample_seed="s1")
    ids = [f"decl-{i}" for i in range(5000)] + ["", "é-ü"]
    many = policy.in_sample_many(ids)
    assert many.tolist() == [policy.in_sample(i) for i in ids]
    if 0 < share < 1:
        assert 0 < many.sum() < len(ids)


def test_scores_combine_the_same_way_in_both_paths() -> None:
    rng = random.Random(3)
    probs = np.array([rng.random() for _ in range(3000)] + [0.0, 1.0, 0.125, 0.005, 0.015])
    model = percent(probs)
    rules = np.array([float(rng.choice([0, 5, 12.5, 40, 100, 130])) for _ in range(len(probs))])
    model[::7] = np.nan  # no model score for these
    together = combine_many(rules, model)
    one = [combine(r, None if np.isnan(m) else float(m)) for r, m in zip(rules, model, strict=True)]
    assert together.tolist() == one
    assert together.max() <= 100.0 and (together >= np.minimum(rules, 100.0)).all()


def test_sample_many_reads_arrow_columns_and_refuses_missing_ids() -> None:
    import pyarrow as pa

    policy = LanePolicy(
        kinds={"declaration": KindLanes({"red": 80.0})}, sample_share=0.3, sample_seed="s\x1f2"
    )
    ids = [f"decl-{i}" for i in range(2000)]
    chunked = pa.chunked_array([ids[:700], ids[700:]])
    assert policy.in_sample_many(chunked).tolist() == [policy.in_sample(i) for i in ids]
    with pytest.raises(ValueError, match="must not be null"):
        policy.in_sample_many(pa.array(["a", None]))
