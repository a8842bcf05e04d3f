"""Fixtures of the access tests: a migrated embedded instance."""

from __future__ import annotations

import pytest

from sciti.ops import migrate
from sciti.settings import Settings


@pytest.fixture
def sqlite_api_settings(settings: Settings) -> Settings:
    """An instance with a migrated operational database (SQLite)."""
    migrate(settings.resolved_ops_db_url)
    return settings
