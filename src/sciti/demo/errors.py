"""Errors of the demo-world generator."""

from __future__ import annotations

from sciti.errors import SCITIError


class DemoError(SCITIError):
    """The synthetic world cannot be generated as asked (unknown scale, unusable output folder)."""

    code = "demo_error"
