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


class MissingColumn(ConnectorError):
    """A unit's header lacks a column the connector maps. It fails the batch (retryable, nothing
    committed) rather than quarantining the whole unit as one entry: whether the file or the
    connector is wrong, the rows come in once it is fixed and are counted as rows (decision 0094)."""

    code = "missing_column"


class UnitBusy(AcquireError):
    """The unit is being ingested right now by another process: try again later (decision 0094)."""

    code = "ingest_in_progress"
    http_status = 409


class NotInitialised(SCITIError):
    """The operational database has no SCITI schema, or an older one: only `sciti init` makes it."""

    code = "not_initialised"
    http_status = 503
