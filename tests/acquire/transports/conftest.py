"""Fixtures of the transport tests: an instance whose connectors are the test connectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.settings import Settings
from tests.conftest import ROOT, make_settings

CONNECTORS = ROOT / "tests" / "fixtures" / "connectors"


@pytest.fixture
def tsettings(tmp_path: Path) -> Settings:
    """Embedded instance (SQLite ops DB and catalog) using tests/fixtures/connectors."""
    home = tmp_path / "instance"
    home.mkdir()
    return make_settings(home, connectors_dir=CONNECTORS, buffer_max_seconds=0.5)


@pytest.fixture
def runner(tsettings: Settings):
    from sciti.acquire import Runner

    return Runner(tsettings)


@pytest.fixture
def connector(tsettings: Settings, request: pytest.FixtureRequest):
    """The test connector named by ``@pytest.mark.parametrize("connector", [...], indirect=True)``."""
    from sciti.acquire import load_connector

    return load_connector(tsettings, request.param)
