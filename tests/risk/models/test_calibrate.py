"""Model score calibration: lane thresholds mean stated shares of traffic, stored with the model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sciti.errors import ConfigError
from sciti.risk.engine.assessment import percent
from sciti.risk.errors import ModelError
from sciti.risk.lanes import load_policy, parse_policy
from sciti.risk.models.calibrate import (
    Calibration,
    anchors,
    calibration_of,
    fit_calibration,
    model_scores,
    unit_maxima,
)
from tests.conftest import make_settings

POINTS = [(1.0, 0.0), (0.20, 40.0), (0.08, 60.0), (0.02, 80.0)]


def skewed(n: int, seed: int = 0) -> np.ndarray:
    """Probabilities like a model trained on inspected records gives ordinary traffic: mostly high."""
    return np.random.default_rng(seed).beta(5, 1.5, n)


@pytest.mark.parametrize(("threshold", "share"), [(40, 0.20), (60, 0.08), (80, 0.02)])
def test_thresholds_hold_their_share_of_the_calibration_traffic(threshold, share) -> None:
    p = skewed(20_000)
    cal = fit_calibration(p, POINTS, unit="declarations", period="2026-01-01 to 2026-03-31")
    scores = cal.scores(p)
    assert abs(float(np.mean(scores >= threshold)) - share) < 0.002
    assert float(np.mean(percent(p) >= threshold)) > 2 * share  # raw 100 x p would flag far more


def test_the_map_keeps_the_model_ranking_and_bounds() -> None:
    p = skewed(5_000, seed=1)
    cal = fit_calibration(p, POINTS, unit="declarations", period="x")
    grid = np.linspace(-0.5, 1.5, 4001)
    s = cal.scores(grid)
    assert np.all(np.diff(s) >= 0) and s.min() == 0.0 and s.max() == 100.0
    assert cal.scores(np.array([p.max()]))[0] == 100.0
    assert np.array_equal(s, np.round(s, 2))


def test_many_equal_probabilities_take_the_lowest_score_of_their_run() -> None:
    p = np.concatenate([np.full(900, 0.7), np.linspace(0.71, 0.99, 100)])  # 90 % share one value
    cal = fit_calibration(p, POINTS, unit="declarations", period="x")
    assert cal.scores(np.array([0.7]))[0] == 0.0  # everyone has at least this: bottom, not top
    assert float(np.mean(cal.scores(p) >= 40)) <= 0.2


def test_meta_round_trip_gives_the_same_scores() -> None:
    p = skewed(3_000, seed=2)
    cal = fit_calibration(p, POINTS, unit="declarations", period="x")
    again = Calibration.from_meta(cal.to_meta())
    assert np.array_equal(again.scores(p), cal.scores(p))
    with pytest.raises(ModelError, match="not known"):
        Calibration.from_meta({**cal.to_meta(), "method": "isotonic/9"})


@pytest.mark.parametrize(
    ("whole", "text"),
    [
        (0, "100% of declarations scored in P score as high or higher"),
        (40, "top 20% of declarations scored in P"),
        (60, "top 8.0% of declarations scored in P"),
        (80, "top 2.0% of declarations scored in P"),
        (100, "top 0.01% of declarations scored in P"),
        (130, "top 0.01% of declarations scored in P"),
    ],
)
def test_share_in_words(whole, text) -> None:
    cal = fit_calibration(np.linspace(0, 1, 10_000), POINTS, unit="declarations", period="P")
    assert cal.share_text(whole) == text


class _Model:
    def __init__(self, meta):
        self.meta = meta


def test_a_model_without_calibration_scores_100_times_p() -> None:
    p = skewed(1_000)
    assert calibration_of(_Model({})) is None
    assert np.array_equal(model_scores(_Model({}), p), percent(p))
    cal = fit_calibration(p, POINTS, unit="declarations", period="x")
    m = _Model({"calibration": cal.to_meta()})
    assert calibration_of(m) is calibration_of(m)  # parsed once
    assert np.array_equal(model_scores(m, p), cal.scores(p))
    assert np.array_equal(model_scores(m, p[:1]), cal.scores(p)[:1])  # one record: the same number


def test_a_declaration_counts_once_at_its_highest_item() -> None:
    import pyarrow as pa

    feats = pa.table({"declaration_record_id": ["a", "a", "b", "c", "c", "c"]})
    got = unit_maxima(feats, np.array([0.1, 0.5, 0.2, 0.3, 0.9, 0.4]), "declaration")
    assert sorted(got.tolist()) == [0.2, 0.5, 0.9]


def test_packaged_policy_states_declaration_shares() -> None:
    assert anchors(load_policy(), "declaration") == POINTS
    assert anchors(load_policy(), "passenger") == []  # no shares: its models keep raw scores


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"red": 0.02, "orange": 0.1}, "no threshold"),
        ({"red": 0.0}, "not between 0 and 1"),
        ({"red": 1.5}, "not between 0 and 1"),
        ({"red": 0.10, "yellow": 0.05}, "not below"),
        ([0.1], "not a mapping"),
    ],
)
def test_bad_model_shares_are_refused(shares, message) -> None:
    doc = {"kinds": {"declaration": {"thresholds": {"red": 80, "yellow": 60}, "model_shares": shares}}}
    with pytest.raises(ConfigError, match=message):
        parse_policy(doc)


# A demo-like data set: the tiny synthetic world, a model trained and calibrated from its lake.


@pytest.fixture(scope="module")
def trained(world_lake, tmp_path_factory):
    from sciti.ops import migrate
    from sciti.risk.models import load_version, train

    tmp = tmp_path_factory.mktemp("calibrated")
    s = make_settings(
        world_lake.home,
        ops_db_url=f"sqlite:///{tmp / 'ops.db'}",
        object_store=str(tmp / "objects"),
        catalog_uri=world_lake.resolved_catalog_uri,
        warehouse=world_lake.resolved_warehouse,
    )
    migrate(s.resolved_ops_db_url)
    entry = train(s, "declaration", actor="ana", params={"min_data_in_leaf": 5}, promote_to="champion")
    return s, load_version(s, entry["version"])


def test_demo_like_traffic_reaches_all_four_lanes_in_plausible_shares(trained) -> None:
    from sciti.risk import features
    from sciti.risk.engine import Assessor, KindParts

    s, model = trained
    cal = calibration_of(model)
    assert cal is not None and cal.units >= 200, model.meta.get("calibration_note")
    assessor = Assessor.load(s, kinds=("declaration",))
    p = assessor.parts["declaration"]
    assessor.parts["declaration"] = KindParts(p.rules, model, None)
    recs = features.lake_records(s, "declaration")
    out = assessor.assess_batch("declaration", recs, explain="none")
    n = out.num_rows
    share = {lane: c / n for lane, c in Counter(out["risk_lane"].to_pylist()).items()}
    assert set(share) == {"green", "blue", "yellow", "red"}, share
    assert share["green"] >= 0.5, share
    assert 0.003 <= share["red"] <= 0.10, share
    assert 0.01 <= share["yellow"] <= 0.20 and 0.02 <= share["blue"] <= 0.30, share
    raw = Counter(load_policy().lanes("declaration", percent(model.score(features.compute_batch(
        "declaration", recs, assessor.reference)))).tolist())  # fmt: skip
    assert raw["red"] + raw["yellow"] + raw["blue"] > (1 - share["green"]) * n  # what 100 x p gave

    # The reasons say what the model's score means, and the score is the calibrated one.
    row = out.slice(0, 1).to_pylist()[0]
    line = next(r for r in row["reasons"] if f"Model {model.version} gives" in r)  # "Item 2: Model ..."
    assert line.endswith(cal.share_text(round(row["model_score"])))
    assert " of declarations scored in " in line


def test_batch_scores_are_the_calibrated_scores_of_the_model(trained) -> None:
    from sciti.risk import features
    from sciti.risk.engine import Assessor, KindParts

    s, model = trained
    assessor = Assessor.load(s, kinds=("declaration",))
    p = assessor.parts["declaration"]
    assessor.parts["declaration"] = KindParts(p.rules, model, None)
    recs = features.lake_records(s, "declaration").slice(0, 300)
    feats = features.compute_batch("declaration", recs, assessor.reference)
    out = assessor.assess_batch("declaration", feats, explain="none", with_features=True)
    want = unit_maxima(feats, model_scores(model, model.score(feats)), "declaration")
    assert sorted(out["model_score"].to_pylist()) == sorted(want.tolist())


def test_single_equals_batch_with_a_calibrated_model(trained) -> None:
    from sciti.risk import features
    from sciti.risk.engine import Assessor, KindParts

    s, model = trained
    assessor = Assessor.load(s, kinds=("declaration",))
    p = assessor.parts["declaration"]
    assessor.parts["declaration"] = KindParts(p.rules, model, None)
    recs = features.lake_records(s, "declaration")
    ids = recs["declaration_record_id"].to_pylist()
    single_item = [i for i, d in enumerate(ids) if ids.count(d) == 1][:40]  # the whole record in one call
    rows = recs.take(single_item)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", rows, explain="none").to_pylist()
    }
    assert len(batch) == 40
    for row in rows.to_pylist():
        (single,) = assessor.assess(
            "declaration", [{**row, "record_id": row["declaration_record_id"], "items": [row]}]
        )
        other = batch[single.record_id]
        line = f"Model {model.version} gives"
        assert (single.model_score, single.score, single.risk_lane) == (
            other["model_score"], other["score"], other["risk_lane"],
        )  # fmt: skip
        assert [r for r in single.reasons if line in r] == [r for r in other["reasons"] if line in r]
