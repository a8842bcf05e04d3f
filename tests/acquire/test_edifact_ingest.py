"""EDIFACT end to end: the shipped connector definitions, and files ingested by the real runner
into the lake (SQLite catalog) with counts that reconcile and parent links that hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.acquire import load_connector
from tests.acquire.conftest import rows, write_connector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edifact"


@pytest.mark.parametrize(
    ("name", "message", "kinds"),
    [
        ("edifact-cuscar", "CUSCAR", ["manifest", "consignment", "transport_equipment"]),
        ("edifact-cusdec", "CUSDEC", ["declaration", "declaration_item", "declaration_party"]),
    ],
)
def test_shipped_connectors_load(settings, name, message, kinds):
    connector = load_connector(settings, name)
    assert (connector.format, connector.kinds, connector.options, connector.files) == (
        "edifact",
        kinds,
        {"message": message},
        "*.edi",
    )


def _connector(settings, message: str, kinds: list[str]):
    return write_connector(
        settings,
        {
            "name": f"edi_{message.lower()}",
            "source": f"edi_{message.lower()}",
            "format": "edifact",
            "kinds": kinds,
            "files": "*.edi",
            "options": {"message": message},
        },
    )


def test_cuscar_file_lands_in_the_lake_linked(acq_settings, runner, tmp_path):
    connector = _connector(acq_settings, "CUSCAR", ["manifest", "consignment", "transport_equipment"])
    [result] = runner.ingest_path(connector, FIXTURES / "cuscar_d96b.edi")
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 2, 2, 0)
    manifests = rows(acq_settings, "std.manifests")
    consignments = rows(acq_settings, "std.consignments")
    equipment = rows(acq_settings, "std.transport_equipment")
    assert sorted(m["manifest_id"] for m in manifests) == ["AWB2611200002", "MAN2611200001"]
    assert len(consignments) == 4 and len(equipment) == 3
    by_id = {m["record_id"]: m for m in manifests}
    assert all(c["parent_record_id"] in by_id for c in consignments)
    assert all(by_id[c["parent_record_id"]]["manifest_id"] == c["manifest_id"] for c in consignments)
    assert {c["locator"].split(";")[0] for c in consignments} == {
        "cuscar_d96b.edi#msg=0001",
        "cuscar_d96b.edi#msg=0002",
    }
    again = runner.ingest_path(connector, FIXTURES / "cuscar_d96b.edi")[0]
    assert again.status == "duplicate" and len(rows(acq_settings, "std.manifests")) == 2


def test_bad_messages_are_quarantined_and_counts_reconcile(acq_settings, runner, tmp_path):
    connector = _connector(acq_settings, "CUSDEC", ["declaration", "declaration_item", "declaration_party"])
    good = (FIXTURES / "cusdec_d96b.edi").read_text(encoding="utf-8")
    body = good[good.index("UNH+") : good.index("UNZ+")]
    bad = body.replace("UNH+1+", "UNH+2+").replace("UNT+49+1'", "UNT+48+2'")  # wrong UNT count
    text = good[: good.index("UNZ+")] + bad + "UNZ+2+CD00000451'\n"
    path = tmp_path / "two.edi"
    path.write_text(text, encoding="utf-8")
    [result] = runner.ingest_path(connector, path)
    assert result.status == "committed"
    assert result.received == result.stored + result.quarantined
    assert result.quarantined >= 1 and result.stored == 1
    assert [d["declaration_id"] for d in rows(acq_settings, "std.declarations")] == ["TW26KH0000123"]
    assert len(rows(acq_settings, "std.declaration_items")) == 2


@pytest.mark.postgres
def test_shipped_connector_ingests_into_postgres_catalog(pg_settings):
    """The same file through the shipped connector, with catalog and ops database on PostgreSQL."""
    from sciti.acquire import Runner

    connector = load_connector(pg_settings, "edifact-cuscar")
    [result] = Runner(pg_settings).ingest_path(connector, FIXTURES / "cuscar_d16a.edi")
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 1, 1, 0)
    equipment = rows(pg_settings, "std.transport_equipment")
    assert sorted(e["container_id"] for e in equipment) == ["HLXU8753208", "MAEU6044127"]
    assert {e["source"] for e in equipment} == {"edifact-cuscar"}
