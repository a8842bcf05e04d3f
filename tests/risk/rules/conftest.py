"""An operational database (SQLite, and the real PostgreSQL) with analysts and a supervisor."""

from __future__ import annotations

import pytest

from sciti.access import create_user
from sciti.ops import migrate, session_scope
from sciti.risk.rules import clear_cache
from sciti.settings import Settings
from tests.demo.conftest import tiny_world  # noqa: F401 (the demo world fixture, shared)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PEOPLE = {
    "alice": ["analyst"],  # writes rules
    "bob": ["supervisor"],  # approves rules
    "carol": ["supervisor", "analyst"],  # may both write and approve
    "vic": ["viewer"],  # may do neither
}


def add_people(settings: Settings) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        for name, roles in PEOPLE.items():
            create_user(session, name, roles, service=True)


@pytest.fixture(params=BACKENDS)
def rules_db(request: pytest.FixtureRequest) -> Settings:
    """Settings whose migrated ops DB holds the people above, on each backend in turn."""
    s = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(s.resolved_ops_db_url)
    add_people(s)
    clear_cache()
    return s


UNDERVALUE = """\
id: T-UNDER-01
title: Undervalued goods
kind: declaration
when: unit_value_ratio < 30% and not aeo
weight: 40
reason: "Unit value {unit_value_ratio:.0%} of reference"
"""


@pytest.fixture
def sqlite_rules_db(settings: Settings) -> Settings:
    """The same on SQLite only, for logic that does not depend on the database."""
    migrate(settings.resolved_ops_db_url)
    add_people(settings)
    clear_cache()
    return settings
