"""Fitting a LightGBM classifier on a features table (no lake, no registry: pure and testable)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from sciti.risk.models.matrix import fit_categories, model_columns, to_matrix
from sciti.risk.models.scoring import ScoringModel

# Chosen on the KCS training file with a time-ordered hold-out (see docs/risk-models.md).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "num_boost_round": 300,
    "seed": 0,
    # One thread: deterministic, and no OpenMP oversubscription inside a busy server process.
    "num_threads": 1,
    "verbose": -1,
}


def fit(
    kind: str,
    features: pa.Table,
    y: np.ndarray,
    *,
    label: str = "fraud",
    version: str = "unsaved",
    params: dict[str, Any] | None = None,
    valid: tuple[pa.Table, np.ndarray] | None = None,
) -> ScoringModel:
    """Train on ``features`` (compute_batch output) with 0/1 labels ``y``.

    With ``valid``, training stops early when the validation log-loss stops improving (the number
    of trees used is kept in the model's meta).
    """
    merged = {**DEFAULT_PARAMS, **(params or {})}
    rounds = int(merged.pop("num_boost_round"))
    numeric, categorical = model_columns(kind, label)
    categories = fit_categories(features, categorical)
    x = to_matrix(features, numeric, categories)
    cat_idx = list(range(len(numeric), len(numeric) + len(categories)))
    train_set = lgb.Dataset(
        x, label=np.asarray(y, dtype=np.float64), categorical_feature=cat_idx, free_raw_data=False
    )
    callbacks: list[Callable[..., Any]] = []
    valid_sets = []
    if valid is not None and len(valid[1]) and 0 < float(np.mean(valid[1])) < 1:
        xv = to_matrix(valid[0], numeric, categories)
        valid_sets = [lgb.Dataset(xv, label=np.asarray(valid[1], dtype=np.float64), reference=train_set)]
        callbacks = [lgb.early_stopping(50, verbose=False)]
    booster = lgb.train(merged, train_set, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks)
    meta = {
        "params": {**merged, "num_boost_round": rounds},
        "best_iteration": booster.best_iteration or rounds,
    }
    return ScoringModel(version, kind, label, numeric, categories, booster, meta)
