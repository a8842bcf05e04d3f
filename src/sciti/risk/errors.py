"""Errors of the risk engine (rules, features, models, engine). Each part appends its own classes."""

from __future__ import annotations

from sciti.errors import SCITIError


# --- features and models (MODELS helper) ---
class FeatureError(SCITIError):
    code = "feature_error"
    http_status = 422


class ModelError(SCITIError):
    code = "model_error"
    # The request was fine but the lake or registry state does not allow it (e.g. too few labels).
    http_status = 409


class ModelLoadError(ModelError):
    code = "model_load_error"
    default_remedy = (
        "train a new version (`sciti risk train KIND`) or promote another (`sciti risk model promote`)"
    )


class ModelNotFound(ModelError):
    code = "model_not_found"
    http_status = 404
    default_remedy = "list the versions with `sciti risk model list KIND`"
