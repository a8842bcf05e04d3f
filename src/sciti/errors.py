"""Root of SCITI's errors. Each package adds its own subclasses in its own errors.py.

A SCITIError names the thing that went wrong and says what to do about it: ``remedy`` is shown
to the person next to the message (CLI one-line reason, API error envelope).
"""

from __future__ import annotations


class SCITIError(Exception):
    """Base error. ``code`` is stable and machine-readable; ``remedy`` tells a person what to do."""

    code = "sciti_error"
    http_status = 500
    # Subclasses with one fixed meaning set these instead of overriding __init__.
    default_message = "SCITI could not complete the request"
    default_remedy: str | None = None

    def __init__(self, message: str | None = None, *, remedy: str | None = None, details: dict | None = None):
        message = message or self.default_message
        super().__init__(message)
        self.message = message
        self.remedy = remedy or self.default_remedy
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.remedy})" if self.remedy else self.message


class ConfigError(SCITIError):
    code = "config_error"


class NotFound(SCITIError):
    code = "not_found"
    http_status = 404


class Conflict(SCITIError):
    code = "conflict"
    http_status = 409


class InvalidInput(SCITIError):
    code = "invalid_input"
    http_status = 422
