"""Errors of the long-lived transports (drop folder, HTTP push, SQL extraction, MQTT)."""

from __future__ import annotations

from sciti.errors import ConfigError, SCITIError


class TransportError(SCITIError):
    """A transport could not do its work (source unreachable, bad transport section, ...)."""

    code = "transport_error"
    http_status = 502


class TransportConfigError(ConfigError):
    """The ``transport:`` section of a connector is missing something or is malformed."""

    code = "transport_config_error"


class PayloadTooLarge(SCITIError):
    """An HTTP push body is larger than ``settings.max_upload_bytes``."""

    code = "payload_too_large"
    http_status = 413
