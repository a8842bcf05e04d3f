"""Connector definitions: the shipped ones load, broken ones fail with a clear message."""

from __future__ import annotations

import pytest

from sciti.acquire import ConnectorError, list_connectors, load_connector
from tests.acquire.conftest import DECL_CONNECTOR, write_connector


def test_kcs_connector_loads(settings) -> None:
    kcs = load_connector(settings, "kcs")
    assert (kcs.source, kcs.format, kcs.files) == ("kcs", "csv", "*.csv")
    assert [o.kind for o in kcs.outputs][:2] == ["declaration", "declaration_item"]
    assert "kcs" in [c.name for c in list_connectors(settings)]


def test_unknown_connector_names_the_known_ones(acq_settings) -> None:
    write_connector(acq_settings, DECL_CONNECTOR)
    with pytest.raises(ConnectorError) as info:
        load_connector(acq_settings, "nope")
    assert "unknown connector 'nope'" in info.value.message and "decl" in (info.value.remedy or "")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"format": "xls"}, "unknown format 'xls'"),
        ({"outputs": [{"kind": "shipment", "fields": {"a": "b"}}]}, "unknown record kind 'shipment'"),
        ({"outputs": [{"kind": "declaration", "fields": {"colour": "x"}}]}, "has no field 'colour'"),
        ({"outputs": []}, "needs `outputs:`"),
        ({"name": "Bad Name"}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_definitions_are_explained(acq_settings, change, words) -> None:
    folder = acq_settings.connectors_dir / "decl"
    folder.mkdir(parents=True)
    import yaml

    (folder / "connector.yaml").write_text(yaml.safe_dump({**DECL_CONNECTOR, **change}))
    with pytest.raises(ConnectorError) as info:
        load_connector(acq_settings, "decl")
    assert words in info.value.message
    assert "connector.yaml" in info.value.message


def test_yaml_syntax_errors_are_explained(acq_settings) -> None:
    folder = acq_settings.connectors_dir / "broken"
    folder.mkdir(parents=True)
    (folder / "connector.yaml").write_text("name: broken\nformat: [csv\n")
    with pytest.raises(ConnectorError, match="not valid YAML"):
        load_connector(acq_settings, "broken")
