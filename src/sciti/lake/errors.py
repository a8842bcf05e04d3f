"""Errors of the lake."""

from sciti.errors import SCITIError


class LakeError(SCITIError):
    code = "lake_error"
