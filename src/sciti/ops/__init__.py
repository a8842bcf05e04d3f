"""Operational database: users, tokens, batch registry, quarantine, connector state, workflow."""

from sciti.ops.db import get_engine, migrate, session_scope
from sciti.ops.models import (
    ApiToken,
    Base,
    Batch,
    ConnectorState,
    QuarantineRecord,
    StagedRecord,
    User,
    utcnow,
)

__all__ = [
    "ApiToken",
    "Base",
    "Batch",
    "ConnectorState",
    "QuarantineRecord",
    "StagedRecord",
    "User",
    "get_engine",
    "migrate",
    "session_scope",
    "utcnow",
]
