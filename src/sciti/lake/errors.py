"""Errors of the lake."""

from sciti.errors import SCITIError


class LakeError(SCITIError):
    code = "lake_error"


class QueryError(LakeError):
    """A query cannot run: bad SQL, unknown table or column, bad as-of."""

    code = "query_error"
    http_status = 400
