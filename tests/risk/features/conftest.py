from __future__ import annotations

import pytest

from sciti.settings import Settings
from tests.risk.features.world import build_world_lake


@pytest.fixture(scope="session")
def world_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_world_lake(tmp_path_factory)
