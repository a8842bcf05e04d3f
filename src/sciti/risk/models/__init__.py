"""Risk models: LightGBM classifiers on the derived features, a registry, and explanations."""

from sciti.risk.models.fit import DEFAULT_PARAMS, fit
from sciti.risk.models.matrix import model_columns
from sciti.risk.models.registry import (
    get_version,
    list_versions,
    load_artefact,
    load_model,
    load_version,
    promote,
    register,
    trained_on_snapshots,
)
from sciti.risk.models.scoring import Factor, ScoringModel, describe
from sciti.risk.models.train import LABELS, sources_differ, time_split, train

__all__ = [
    "DEFAULT_PARAMS",
    "LABELS",
    "Factor",
    "ScoringModel",
    "describe",
    "fit",
    "get_version",
    "list_versions",
    "load_artefact",
    "load_model",
    "load_version",
    "model_columns",
    "promote",
    "register",
    "sources_differ",
    "time_split",
    "train",
    "trained_on_snapshots",
]
