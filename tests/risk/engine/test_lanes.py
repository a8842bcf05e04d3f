"""Lanes: thresholds per kind, the compliance sample, red-lane capacity (pure policy, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from sciti.errors import ConfigError
from sciti.risk.lanes import load_policy, parse_policy, ration_red

POLICY = {
    "kinds": {
        "declaration": {"thresholds": {"red": 80, "yellow": 60, "blue": 40}, "over_capacity": "yellow"},
        "passenger": {"thresholds": {"red": 85, "yellow": 65}},
    },
    "capacity": {"default": None, "offices": {"40": 2, "20": 0}},
    "sample": {"share": 0.05, "seed": "s1"},
}


@pytest.mark.parametrize(
    ("kind", "score", "lane"),
    [
        ("declaration", 0, "green"),
        ("declaration", 39.99, "green"),
        ("declaration", 40, "blue"),
        ("declaration", 60, "yellow"),
        ("declaration", 80, "red"),
        ("declaration", 100, "red"),
        ("passenger", 60, "green"),  # no blue lane for passengers
        ("passenger", 65, "yellow"),
        ("passenger", 84.9, "yellow"),
        ("passenger", 85, "red"),
    ],
)
def test_score_to_lane(kind, score, lane) -> None:
    policy = parse_policy(POLICY)
    assert policy.lane(kind, score) == lane
    assert policy.lanes(kind, np.array([score]))[0] == lane  # the batch form agrees


def test_compliance_sample_is_reproducible_and_near_its_share() -> None:
    policy = parse_policy(POLICY)
    ids = [f"rec-{i}" for i in range(20_000)]
    first = [policy.in_sample(r) for r in ids]
    assert first == [policy.in_sample(r) for r in ids]  # same record, same answer, every time
    assert 0.04 < sum(first) / len(ids) < 0.06
    other = parse_policy({**POLICY, "sample": {"share": 0.05, "seed": "s2"}})
    assert first != [other.in_sample(r) for r in ids]  # the seed chooses a different sample


def test_capacity_keeps_the_highest_scores_red() -> None:
    policy = parse_policy(POLICY)
    offices = ["40", "40", "40", "40", "20", "99"]
    days = ["2026-01-01"] * 6
    scores = np.array([81.0, 99.0, 85.0, 90.0, 95.0, 88.0])
    lanes = np.array(["red"] * 6, dtype=object)
    keep = ration_red(policy, offices, days, scores, lanes)
    # office 40 takes 2: the 99 and the 90; office 20 takes none; office 99 has no limit
    assert keep.tolist() == [False, True, False, True, False, True]
    again = ration_red(policy, offices, days, scores, lanes, used={("40", "2026-01-01"): 1})
    assert again.tolist() == [False, True, False, False, False, True]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "no `kinds:`"),
        ({"kinds": {"declaration": {"thresholds": {"purple": 3}}}}, "thresholds for"),
        ({"kinds": {"declaration": {"thresholds": {"red": 3}, "over_capacity": "red"}}}, "over_capacity"),
        ({"kinds": {"declaration": {"thresholds": {"red": 3}}}, "sample": {"share": 2}}, "between 0 and 1"),
    ],
)
def test_bad_policy_is_refused_with_its_reason(doc, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(doc)


def test_packaged_policy_covers_every_assessed_kind(tmp_path) -> None:
    from sciti.risk.engine import SUBJECTS

    policy = load_policy(tmp_path)  # no lanes.yaml in this home: the packaged default
    assert set(SUBJECTS) <= set(policy.kinds)
    (tmp_path / "lanes.yaml").write_text(
        "kinds:\n  declaration:\n    thresholds: {red: 10}\n", encoding="utf-8"
    )
    assert load_policy(tmp_path).lane("declaration", 10) == "red"  # an instance's own file wins


def test_an_instance_file_without_model_shares_is_warned_about(tmp_path, caplog) -> None:
    # The file replaces the packaged one whole: leaving out model_shares turns calibration off.
    (tmp_path / "lanes.yaml").write_text(
        "kinds:\n  declaration:\n    thresholds: {red: 80, yellow: 60}\n", encoding="utf-8"
    )
    with caplog.at_level("WARNING", logger="sciti.risk.lanes"):
        assert load_policy(tmp_path).for_kind("declaration").model_shares == {}
    assert "no model_shares for declaration" in caplog.text
    caplog.clear()
    (tmp_path / "lanes.yaml").write_text(
        "kinds:\n  declaration:\n    thresholds: {red: 80}\n    model_shares: {red: 0.02}\n", encoding="utf-8"
    )
    with caplog.at_level("WARNING", logger="sciti.risk.lanes"):
        load_policy(tmp_path)
    assert "model_shares" not in caplog.text
