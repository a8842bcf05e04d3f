"""Fixtures for acquisition tests: a connectors folder of our own and helpers to read the lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from sciti.acquire import Connector, Runner, load_connector
from sciti.lake import open_lake
from sciti.settings import Settings
from tests.conftest import make_settings

HEADER = "Declaration ID,Date,Office,Amount,Currency,HS Code,Container"

DECL_CONNECTOR: dict[str, Any] = {
    "name": "decl",
    "source": "decl",
    "description": "test declarations",
    "format": "csv",
    "files": "*.csv",
    "options": {"encoding": "utf-8"},
    "outputs": [
        {
            "kind": "declaration",
            "fields": {
                "declaration_id": "declaration_id",
                "version": "1",
                "acceptance_date": "date",
                "office_code": "office",
                "invoice_amount": "amount",
                "invoice_currency": "currency",
            },
        },
        {
            "kind": "declaration_item",
            "fields": {
                "declaration_id": "declaration_id",
                "declaration_version": "1",
                "item_number": "1",
                "hs_code": "hs_code",
                "container_id": "container",
            },
        },
    ],
}


@pytest.fixture
def acq_settings(tmp_path: Path) -> Settings:
    """An embedded instance whose connectors folder is the test's own (plus a copy of nothing else)."""
    home = tmp_path / "instance"
    home.mkdir()
    (tmp_path / "connectors").mkdir()
    return make_settings(home, connectors_dir=tmp_path / "connectors")


def write_connector(settings: Settings, definition: dict[str, Any]) -> Connector:
    folder = Path(settings.connectors_dir) / definition["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "connector.yaml").write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return load_connector(settings, definition["name"])


def decl_connector(settings: Settings, **overrides: Any) -> Connector:
    return write_connector(settings, {**DECL_CONNECTOR, **overrides})


def rows(settings: Settings, ident: str) -> list[dict[str, Any]]:
    """Every row of a lake table (empty when the table does not exist)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists(ident):
        return []
    table: pa.Table = lake.table(ident).scan().to_arrow()
    return table.to_pylist()


@pytest.fixture
def runner(acq_settings: Settings) -> Runner:
    return Runner(acq_settings)
