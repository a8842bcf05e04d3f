"""Lakes to test against: the embedded SQLite catalog and the real PostgreSQL catalog."""

from __future__ import annotations

import pytest

from sciti.lake import Lake
from sciti.settings import Settings


def make_lake(s: Settings) -> Lake:
    lake = Lake(s.resolved_catalog_uri, s.resolved_warehouse)
    lake.ensure_zones()
    return lake


@pytest.fixture
def lake(settings: Settings) -> Lake:
    """A fresh lake on the default SQLite catalog."""
    return make_lake(settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_lake(request: pytest.FixtureRequest) -> Lake:
    """The same tests on both catalogs the lake supports."""
    name = "settings" if request.param == "sqlite" else "pg_settings"
    return make_lake(request.getfixturevalue(name))
