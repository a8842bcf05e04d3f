"""A fitted model scores, explains every score in words, and survives its artefact round trip."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from sciti.risk.evaluate import read_kcs
from sciti.risk.features import build_reference_from, compute_batch, compute_one
from sciti.risk.models import Factor, ScoringModel, fit
from sciti.risk.models.train import labels_of


@pytest.fixture(scope="module")
def kcs_model(shared_data):
    train = read_kcs(shared_data / "kcs" / "train.csv").slice(0, 3000)
    test = read_kcs(shared_data / "kcs" / "valid.csv").slice(0, 500)
    ref = build_reference_from(train, as_of=date(2020, 12, 31), snapshot_id="t", known={})
    feats = compute_batch("declaration", train, ref, point_in_time=True)
    model = fit(
        "declaration", feats, labels_of(feats, "fraud"), params={"num_boost_round": 40}, version="t-1"
    )
    return model, ref, test, compute_batch("declaration", test, ref)


def test_scores_are_probabilities_and_single_equals_batch(kcs_model) -> None:
    model, ref, test, feats = kcs_model
    batch = model.score(feats)
    assert batch.shape == (500,) and np.all((batch >= 0) & (batch <= 1))
    rows = test.to_pylist()[:50]
    single = np.array([model.score(compute_one("declaration", r, ref))[0] for r in rows])
    assert np.allclose(single, batch[:50], rtol=0, atol=1e-12)


def test_every_score_has_factors_in_words(kcs_model) -> None:
    model, _, _, feats = kcs_model
    explained = model.explain(feats.slice(0, 200), top=5)
    assert len(explained) == 200
    for factors in explained:
        assert 1 <= len(factors) <= 5
        assert all(isinstance(f, Factor) and f.text and "(contributes " in f.text for f in factors)
        sizes = [abs(f.contribution) for f in factors]
        assert sizes == sorted(sizes, reverse=True)
    # Contributions add up to the score's log-odds (TreeSHAP is exact).
    c = model.contributions(feats.slice(0, 20))
    p = model.score(feats.slice(0, 20))
    assert np.allclose(1 / (1 + np.exp(-c.sum(axis=1))), p, atol=1e-9)


def test_one_row_gives_exactly_what_booster_predict_gives(kcs_model) -> None:
    """A single row goes through LightGBM's single-row C API, a batch's contributions use every
    core: the same numbers, to the last bit, for the score and every TreeSHAP contribution (also
    for a model read back from its artefact)."""
    model, _, _, feats = kcs_model
    for m in (model, ScoringModel.from_artefact(model.to_artefact())):
        x = m.matrix(feats)
        scores = m.booster.predict(x, num_threads=1)
        contrib = m.booster.predict(x, pred_contrib=True, num_threads=1)
        one_score = np.array([m.score(x[i : i + 1])[0] for i in range(len(x))])
        one_contrib = np.vstack([m.contributions(x[i : i + 1]) for i in range(len(x))])
        assert np.array_equal(one_score, scores)
        assert np.array_equal(one_contrib, contrib)
        assert len(x) >= 256 and np.array_equal(m.contributions(x), contrib)  # a batch, on every core


def test_without_the_single_row_call_records_score_through_predict(
    kcs_model, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The single-row call uses LightGBM internals (``Booster._handle``, ``lightgbm.basic._LIB``): when a
    LightGBM release moves them, records are still scored and explained, with the same numbers."""
    from sciti.risk.models import scoring

    model, _, _, feats = kcs_model
    fresh = ScoringModel.from_artefact(model.to_artefact())
    x = fresh.matrix(feats.slice(0, 20))

    def moved(*args, **kwargs):
        raise AttributeError("'Booster' object has no attribute '_handle'")

    monkeypatch.setattr(scoring, "_SingleRow", moved)
    with caplog.at_level("WARNING", logger="sciti.risk.models.scoring"):
        one_score = np.array([fresh.score(x[i : i + 1])[0] for i in range(len(x))])
        one_contrib = np.vstack([fresh.contributions(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(one_score, model.booster.predict(x, num_threads=1))
    assert np.array_equal(one_contrib, model.booster.predict(x, pred_contrib=True, num_threads=1))
    assert caplog.text.count("single-row call is not available") == 2  # once per call type, not per row


@pytest.mark.parametrize(
    ("feature", "row", "text"),
    [
        (
            "unit_value_ratio",
            {"unit_value_ratio": 0.18, "hs6": "851712", "country_of_origin": "CN"},
            "Declared unit value is 18% of the reference price for HS 851712 from CN (contributes +0.21)",
        ),
        (
            "trader_first_time",
            {"trader_first_time": True, "importer_id": "IMP1"},
            "First-time importer IMP1 (contributes +0.21)",
        ),
        (
            "aeo",
            {"aeo": False, "importer_id": "IMP1"},
            "Importer IMP1 is not an Authorised Economic Operator (contributes +0.21)",
        ),
        ("office_code", {"office_code": "30"}, "Office code is 30 (contributes +0.21)"),
        (
            "unit_value_ratio",
            {"unit_value_ratio": None},
            "Missing: Declared unit value divided by the reference median for HS6 x origin (contributes",
        ),
        (
            "unit_value_band_z",
            {"unit_value_band_z": None},
            "Missing: Robust z-score of the log unit value against the reference band (contributes +0.21)",
        ),
        # A field the record lacks reads "unknown", as in rule reasons, not the raw feature name.
        (
            "hs_origin_risk",
            {"hs_origin_risk": 0.21637064573867548, "hs6": "940510"},
            "HS 940510 from unknown: estimated fraud rate 22% (from the share of past inspections that"
            " found fraud, pulled toward the overall rate when inspections are few) (contributes +0.21)",
        ),
        (
            "unit_value_ratio",
            {"unit_value_ratio": float("inf"), "hs6": "940510", "country_of_origin": "CN"},
            "Cannot be computed from the declared values: Declared unit value divided by the reference",
        ),
        ("item_price", {"item_price": 12345.678}, "Item price is 12,345.7 (contributes +0.21)"),
    ],
)
def test_factor_text(feature: str, row: dict, text: str) -> None:
    from sciti.risk.models import describe

    assert describe("declaration", feature, row, 0.21).startswith(text)


def test_artefact_round_trip_gives_the_same_scores(kcs_model) -> None:
    model, _, _, feats = kcs_model
    again = ScoringModel.from_artefact(model.to_artefact())
    assert again.version == "t-1" and again.feature_names == model.feature_names
    assert np.array_equal(again.score(feats), model.score(feats))


def test_codes_never_seen_in_training_score_like_missing(kcs_model) -> None:
    model, ref, test, _ = kcs_model
    row = compute_one("declaration", {**test.to_pylist()[0], "office_code": "NEVER-SEEN"}, ref)
    missing = compute_one("declaration", {**test.to_pylist()[0], "office_code": None}, ref)
    assert model.score(row)[0] == model.score(missing)[0]
    assert model.score(pa.Table.from_pylist([row]))[0] == model.score(row)[0]


def test_each_label_reads_its_own_columns() -> None:
    from sciti.risk.models import model_columns

    fraud, cats = model_columns("declaration", "fraud")
    critical, cats_c = model_columns("declaration", "critical")
    assert "trader_hit_rate" in fraud and "hs_critical_rate" not in fraud
    assert "trader_hit_rate" not in critical and {"hs_critical_rate", "unit_value_band_z"} <= set(critical)
    assert cats == cats_c and "office_code" in cats
