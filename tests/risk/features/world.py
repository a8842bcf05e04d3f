"""A lake holding the tiny demo world's declarations, parties, inspections and watch list.

Built once per test session (about ten seconds) and shared by the feature and model tests, which
only read it (tests that write make their own instance).
"""

from __future__ import annotations

from sciti.demo import generate
from sciti.demo.load import load_world
from sciti.settings import Settings
from tests.conftest import make_settings

FEEDS = [
    "demo-declarations",
    "demo-declaration-items",
    "demo-declaration-parties",
    "demo-inspections",
    "demo-watchlist",
]
SEED = 7


_BUILT: dict[str, Settings] = {}


def build_world_lake(factory) -> Settings:
    """The shared world lake (one per session, whichever test folder asks first)."""
    if "lake" not in _BUILT:
        root = factory.mktemp("risk_world")
        world = generate(root / "world", "tiny", SEED)
        home = root / "instance"
        home.mkdir()
        settings = make_settings(home)
        report = load_world(settings, world.out, feeds=FEEDS, reference=False)
        assert not report.failed, report.failed
        _BUILT["lake"] = settings
    return _BUILT["lake"]
