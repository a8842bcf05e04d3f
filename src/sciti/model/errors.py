"""Errors of the canonical model."""

from sciti.errors import SCITIError


class ModelError(SCITIError):
    code = "model_error"
