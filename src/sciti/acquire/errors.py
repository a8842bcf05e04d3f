"""Errors of the acquisition stage: connector definitions, formats and batches."""

from __future__ import annotations

from sciti.errors import SCITIError


class AcquireError(SCITIError):
    """Something about acquiring data went wrong (bad connector, unreadable unit, failed batch)."""

    code = "acquire_error"
    http_status = 422


class ConnectorError(AcquireError):
    """A connector definition is missing or malformed."""

    code = "connector_error"
