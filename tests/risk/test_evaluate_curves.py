"""Evaluation curves kept with a model version: small, right at the ends, undefined with one class."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sciti.risk.evaluate import CURVE_POINTS, curves, point_metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.1).astype(float)
    s = y * 0.6 + rng.random(5000)  # informative, not perfect
    return y, s


def test_curves_are_small_and_agree_with_the_point_metrics(scored) -> None:
    y, s = scored
    c = curves(y, s)
    assert all(len(c[k]) <= CURVE_POINTS for k in ("precision_at_k", "roc", "precision_recall"))
    assert len(json.dumps(c)) < 12_000  # kept in the registry entry
    at_k = dict((int(k), p) for k, p in c["precision_at_k"])
    assert sorted(at_k) == list(range(1, 101))
    point = point_metrics(y, s)
    for k in (1, 5, 10):
        assert at_k[k] == pytest.approx(point[f"precision@{k}%"], abs=1e-4)
    assert at_k[100] == pytest.approx(y.mean(), abs=1e-4) == c["base_rate"]
    roc = np.asarray(c["roc"])
    assert roc[0].tolist() == [0.0, 0.0] and roc[-1].tolist() == [1.0, 1.0]
    assert np.all(np.diff(roc[:, 0]) >= 0) and np.all(np.diff(roc[:, 1]) >= 0)
    assert np.trapezoid(roc[:, 1], roc[:, 0]) == pytest.approx(roc_auc_score(y, s), abs=0.01)
    pr = np.asarray(c["precision_recall"])
    assert pr[0, 0] == 0.0 and pr[-1, 0] == 1.0 and np.all(np.diff(pr[:, 0]) >= 0)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_class_leaves_roc_and_precision_recall_undefined(label) -> None:
    c = curves(np.full(50, label), np.linspace(0, 1, 50))
    assert c["roc"] is None and c["precision_recall"] is None
    assert {p for _, p in c["precision_at_k"]} == {label}


def test_no_rows_gives_empty_curves() -> None:
    assert curves(np.array([]), np.array([])) == {
        "n": 0,
        "base_rate": None,
        "precision_at_k": [],
        "roc": None,
        "precision_recall": None,
    }
