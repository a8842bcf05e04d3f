"""Derived locations follow the instance home, wherever the process runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sciti.settings import Settings


def test_a_relative_home_resolves_against_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    # The resolved path is remembered (it is read on every request), but never across directories.
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        monkeypatch.chdir(tmp_path / where)
        s = Settings(home=Path("instance"))
        assert s.resolved_ops_db_url == f"sqlite:///{tmp_path.resolve() / where / 'instance' / 'ops.db'}"
        assert s.resolved_warehouse == str(tmp_path.resolve() / where / "instance" / "warehouse")


def test_an_absolute_home_is_used_as_it_resolves(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    s = Settings(home=tmp_path / "link")
    assert s.resolved_catalog_uri == f"sqlite:///{tmp_path.resolve() / 'real' / 'catalog.db'}"


def test_the_catalog_and_the_operational_database_cannot_share_one_sqlite_file(tmp_path: Path) -> None:
    one = f"sqlite:///{tmp_path / 'one.db'}"
    with pytest.raises(ValidationError, match="name the same SQLite file"):
        Settings(home=tmp_path, catalog_uri=one, ops_db_url=one)
    assert Settings(home=tmp_path, catalog_uri=one).resolved_ops_db_url != one
