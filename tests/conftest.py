"""Fixtures shared by the whole suite: a throw-away instance, the real PostgreSQL, the shared data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sciti.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
# Real public data lives beside the project (never copied into it): see ../shared/data/README.md.
SHARED_DATA = Path(os.environ.get("SCITI_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
PG_SERVER = os.environ.get("SCITI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA}: set SCITI_SHARED_DATA")
    return SHARED_DATA


def make_settings(home: Path, **overrides) -> Settings:
    base = {
        "home": home,
        "codelists_dir": SHARED_DATA / "codelists",
        "wco_schema_dir": SHARED_DATA / "wco" / "schemas",
        "edifact_dir": SHARED_DATA / "edifact",
        "connectors_dir": ROOT / "connectors",
        "log_json": True,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An embedded instance (SQLite catalog and ops DB) in a fresh folder. Its name has a space
    and a percent sign, as a site's folder may: every file must still be found where it was put."""
    home = tmp_path / "customs 100% instance"
    home.mkdir()
    return make_settings(home)


_ENV_FIELDS = (
    "home",
    "codelists_dir",
    "wco_schema_dir",
    "edifact_dir",
    "connectors_dir",
    "catalog_uri",
    "ops_db_url",
)


def settings_env(settings: Settings) -> dict[str, str]:
    """SCITI_* variables that make a separate process see the same instance."""
    return {
        f"SCITI_{k.upper()}": str(getattr(settings, k))
        for k in _ENV_FIELDS
        if getattr(settings, k) is not None
    }


@pytest.fixture
def cli_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Settings], Callable[..., str]]]:
    """``cli_on(settings)`` points ``sciti`` at that instance (its SCITI_* variables set, the
    settings cache cleared, and cleared again at the end) and returns ``run(*args, code=0)``: the
    command run in process, its exit code checked, its output returned."""
    from typer.testing import CliRunner

    from sciti.cli.main import app

    def point(settings: Settings) -> Callable[..., str]:
        for key, value in settings_env(settings).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        runner = CliRunner()

        def run(*args: str, code: int = 0) -> str:
            result = runner.invoke(app, list(args))
            assert result.exit_code == code, result.output
            return result.output

        return run

    yield point
    get_settings.cache_clear()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped afterwards. Yields its URL."""
    name = f"sciti_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        from sciti.ops.db import _session_factory, get_engine

        get_engine(f"{PG_SERVER}/{name}").dispose()  # close its pooled connections before the drop
        _session_factory.cache_clear()
        get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_settings(tmp_path: Path, pg_database: str) -> Settings:
    """An instance whose Iceberg catalog and operational database are on PostgreSQL."""
    home = tmp_path / "instance"
    home.mkdir()
    return make_settings(home, catalog_uri=pg_database, ops_db_url=pg_database)
