"""The operational database schema comes only from migrations, and they match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from sciti.ops import Base, get_engine, migrate


@pytest.fixture(params=["sqlite", "postgres"])
def ops_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def test_migrations_create_every_table_and_match_the_models(ops_url: str) -> None:
    migrate(ops_url)
    migrate(ops_url)  # idempotent: a second run changes nothing
    engine = get_engine(ops_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: run `make migration`\n{diff}"
