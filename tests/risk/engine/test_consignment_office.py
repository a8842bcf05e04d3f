"""A consignment is handled at the office its manifest is lodged with (decision 0108).

The consignment record does not carry that office; its manifest does (``customs_office``, from a
CUSCAR's LOC+22). Batch scoring joins each consignment row to its manifest in the lake; a real-time
request names the manifest's office itself. Either way the assessment gets the same office, so an
officer bound to that office finds the consignment in the queue, as SQL shows it to them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.access import open_query
from sciti.acquire import Runner, load_connector
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.risk import features
from sciti.risk.engine import Assessor, score_since
from sciti.risk.engine.inputs import record_model
from sciti.risk.engine.workqueue import list_queue
from sciti.settings import Settings
from tests.access.test_policy import principal
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.risk.engine.conftest import approve
from tests.risk.engine.test_parity import COMPARED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edifact"
OFFICE = "TWKHH"  # cuscar_d16a.edi: LOC+22+TWKHH, the customs office the report is lodged with
EVERY_CONSIGNMENT = {
    "id": "T-CONS-EVERY",
    "title": "Every consignment",
    "kind": "consignment",
    "when": "transport_document is not missing",
    "lane": "red",
    "reason": "Consignment {transport_document}",
}


@pytest.fixture(scope="module")
def cargo(own_kcs) -> Settings:
    """The KCS instance with two CUSCAR files through the shipped connector: one names its office
    (D.16A), the other none (D.96B); and a rule that sends every consignment to the queue."""
    runner, connector = Runner(own_kcs), load_connector(own_kcs, "edifact-cuscar")
    for name in ("cuscar_d16a.edi", "cuscar_d96b.edi"):
        (result,) = runner.ingest_path(connector, FIXTURES / name)
        assert result.status == "committed", result
    approve(own_kcs, EVERY_CONSIGNMENT)
    return own_kcs


def manifest_offices(settings: Settings) -> dict[str, str | None]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    rows = query(lake, "SELECT record_id, customs_office FROM std.manifests").to_pylist()
    return {r["record_id"]: r["customs_office"] for r in rows}


def as_sent(row: dict) -> dict:
    """A lake row as a clearance system sends the consignment: its own fields, its manifest's
    office, checked by the request model as the API checks it."""
    fields = {"record_id", "source", "customs_office", *get_kind("consignment").field_names}
    body = record_model("consignment").model_validate({k: v for k, v in row.items() if k in fields})
    return body.model_dump(exclude_none=True)


def test_a_consignment_row_carries_its_manifests_office(cargo) -> None:
    rows = features.lake_records(cargo, "consignment").to_pylist()
    offices = manifest_offices(cargo)
    assert len(rows) == 6
    lake = open_lake(cargo.resolved_catalog_uri, cargo.resolved_warehouse)
    parents = {
        r["record_id"]: r["parent_record_id"]
        for r in query(lake, "SELECT record_id, parent_record_id FROM std.consignments").to_pylist()
    }
    for row in rows:
        assert row["customs_office"] == offices[parents[row["record_id"]]], row["transport_document"]
    assert sorted({str(r["customs_office"]) for r in rows}) == ["None", OFFICE]  # D.96B names none


def test_batch_and_real_time_give_a_consignment_its_manifests_office(cargo) -> None:
    assessor = Assessor.load(cargo, kinds=("consignment",))
    recs = features.lake_records(cargo, "consignment")
    batch = {r["record_id"]: r for r in assessor.assess_batch("consignment", recs, explain="all").to_pylist()}
    offices = []
    for row in recs.to_pylist():
        (single,) = assessor.assess("consignment", [as_sent(row)])
        mine, other = single.to_row(), batch[row["record_id"]]
        for name in COMPARED:
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        offices.append(single.office_code)
    assert sorted(map(str, offices)) == ["None"] * 4 + [OFFICE] * 2


def test_an_officer_of_the_office_finds_its_consignments_in_the_queue_as_sql_shows_them(cargo) -> None:
    result = score_since(cargo, "consignment")
    assert result.queued == 6  # every consignment is red (the rule)
    lake = open_lake(cargo.resolved_catalog_uri, cargo.resolved_warehouse)

    def sql_ids(office: str | None) -> set[str]:
        read = open_query(
            lake, principal("targeting_officer", office=office), "SELECT record_id FROM std.consignments"
        )
        return {r["record_id"] for r in read.reader.read_all().to_pylist()}

    with session_scope(cargo.resolved_ops_db_url) as session:
        queued = {
            office: {
                i["record_id"] for i in list_queue(session, scope=office, kind="consignment", limit=50).items
            }
            for office in (OFFICE, "KTCT", None)
        }
    assert len(queued[OFFICE]) == 2 and queued[OFFICE] == sql_ids(OFFICE)
    assert queued["KTCT"] == set() == sql_ids("KTCT")
    assert len(queued[None]) == 6 and queued[None] == sql_ids(None)  # no office: every office's


def test_a_real_time_request_names_the_manifests_office(cargo) -> None:
    row = features.lake_records(cargo, "consignment").to_pylist()[0]
    sent = {k: v for k, v in as_sent(row).items() if k not in ("record_id", "source")}
    sent["transport_document"] = "RT-OFFICE-1"
    with make_client(cargo) as client:
        headers = bearer(token_factory(cargo)("clearance_system"))
        answer = client.post(
            "/api/v1/risk/assess",
            json={"kind": "consignment", "record": {**sent, "customs_office": " KTCT "}},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["assessments"][0]["office_code"] == "KTCT"  # trimmed, as ingest stores it
        # Longer than an account's office (32) could never be worked by one: refused, by name.
        too_long = {**sent, "customs_office": "K" * 33}
        refused = client.post(
            "/api/v1/risk/assess", json={"kind": "consignment", "record": too_long}, headers=headers
        )
        err = assert_envelope(refused, 422, "validation_error")
        assert "customs_office" in refused.text, err
        schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["ConsignmentIn"]
        assert "manifest" in schema["properties"]["customs_office"]["description"]


def test_a_rule_scoped_to_an_office_hits_its_consignments_in_batch_and_in_real_time(cargo) -> None:
    """A consignment rule scoped by office (decision 0113) reads the manifest's office: batch hits
    the lake rows lodged there, real time hits a request naming that office, and no other."""
    rule = {k: v for k, v in EVERY_CONSIGNMENT.items() if k != "lane"}
    approve(cargo, rule | {"id": "T-CONS-OFFICE", "weight": 10, "scope": {"offices": [OFFICE]},
                           "reason": "Lodged at the watched office"})  # fmt: skip
    assessor = Assessor.load(cargo, kinds=("consignment",))
    recs = features.lake_records(cargo, "consignment")
    batch = assessor.assess_batch("consignment", recs).to_pylist()
    hit = {r["record_id"] for r in batch if "T-CONS-OFFICE" in r["rule_ids"]}
    at_office = {r["record_id"] for r in recs.to_pylist() if r["customs_office"] == OFFICE}
    assert len(at_office) == 2 and hit == at_office
    for row in recs.to_pylist():
        (single,) = assessor.assess("consignment", [as_sent(row)])
        assert ("T-CONS-OFFICE" in single.to_row()["rule_ids"]) == (row["record_id"] in at_office)
        elsewhere = {**as_sent(row), "customs_office": "KTCT"}
        (moved,) = assessor.assess("consignment", [elsewhere])
        assert "T-CONS-OFFICE" not in moved.to_row()["rule_ids"]
