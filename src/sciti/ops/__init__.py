"""Operational database: users, tokens, batch registry, quarantine, connector state, workflow."""

# Each area's tables live in their own module; importing them here puts them in Base.metadata.
from sciti.ops import (  # noqa: F401
    account_tables,
    model_tables,
    policy_tables,
    privacy_tables,
    risk_tables,
    rules_tables,
    web_tables,
)
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
