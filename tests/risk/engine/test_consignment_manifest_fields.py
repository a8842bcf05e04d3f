"""A consignment is dated by its manifest, and rules scope and test its manifest's fields (decision 0116).

The consignment record carries no date, office or mode of transport; its manifest does. Batch
scoring takes them from the manifest in the lake (by ``parent_record_id``); a real-time request
names them itself. Either way a record is dated alike (its manifest's arrival, else departure,
else issue), a rule scoped to a mode of transport hits the same consignments, and a condition
naming the manifest's fields gives the same answer.

The data: two CUSCAR files through the shipped connector (D.16A: a sea report lodged at TWKHH;
D.96B: a sea and an air report naming no office) and the D.16A report without any date (a carrier
that sends none), whose consignments batch scoring dates by the day SCITI stored them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sciti.acquire import Runner, load_connector
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.risk import features
from sciti.risk.engine import Assessor
from sciti.risk.engine.inputs import record_model
from sciti.risk.features.catalog import parent_fields
from sciti.settings import Settings
from tests.risk.engine.conftest import approve
from tests.risk.engine.test_parity import COMPARED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "edifact"
UNDATED = "MAEU-KHH-2611-0099"  # the D.16A report sent again without a date, under its own ids
SEA, AIR = "1", "4"  # UN/ECE Rec 19, as the CUSCAR's TDT gives them
EVERY = {"kind": "consignment", "when": "transport_document is not missing", "weight": 10}
EARLY_SEA = (
    "mode_of_transport = '1' and arrival_datetime < date '2026-11-21' and arrival_location is not missing"
)
RULES = [
    EVERY | {"id": "T-BY-SEA", "title": "By sea", "scope": {"modes_of_transport": [SEA]}, "reason": "By sea"},
    EVERY
    | {"id": "T-AT-TWKHH", "title": "At TWKHH", "when": "customs_office = 'TWKHH'", "reason": "At office"},
    EVERY
    | {"id": "T-SEA-EARLY", "title": "Sea, early", "when": EARLY_SEA, "reason": "Arrives {arrival_datetime}"},
    EVERY
    | {
        "id": "T-DATED-EARLY",
        "title": "Dated early",
        "when": "record_date < date '2026-11-21'",
        "reason": "Early",
    },
]


def undated_cuscar(folder: Path) -> Path:
    """cuscar_d16a.edi without its dates (DTM), its manifest and bills renamed, UNT recounted."""
    lines = (FIXTURES / "cuscar_d16a.edi").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("DTM+")]
    text = "\n".join(kept) + "\n"
    for old, new in (
        ("MAEU-KHH-2611-0042", UNDATED),
        ("MAEU261100998", "MAEU261199998"),
        ("HLCU2611SIN4471", "HLCU2611SIN9999"),
        ("16A0000007", "16A0000099"),
        ("UNT+54+", f"UNT+{54 - (len(lines) - len(kept))}+"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "cuscar_undated.edi"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cargo(own_kcs, tmp_path_factory) -> Settings:
    runner, connector = Runner(own_kcs), load_connector(own_kcs, "edifact-cuscar")
    folder = tmp_path_factory.mktemp("cuscar")
    for path in (FIXTURES / "cuscar_d16a.edi", FIXTURES / "cuscar_d96b.edi", undated_cuscar(folder)):
        (result,) = runner.ingest_path(connector, path)
        assert result.status == "committed", result
    for rule in RULES:
        approve(own_kcs, rule)
    return own_kcs


def manifests(settings: Settings) -> dict[str, dict]:
    """Consignment record id -> its manifest's row and the consignment's ingestion time."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    sql = (
        "SELECT c.record_id, c.ingested_at, m.manifest_id, m.customs_office, m.mode_of_transport, "
        "m.arrival_datetime, m.departure_datetime, m.issue_datetime FROM std.consignments c "
        "LEFT JOIN std.manifests m ON m.record_id = c.parent_record_id"
    )
    return {r["record_id"]: r for r in query(lake, sql).to_pylist()}


def as_sent(row: dict) -> dict:
    """A lake row as a clearance system sends the consignment: its own fields and its manifest's,
    checked by the request model as the API checks it."""
    fields = {"record_id", "source", *get_kind("consignment").field_names}
    fields |= {f.name for f in parent_fields("consignment")}
    body = record_model("consignment").model_validate({k: v for k, v in row.items() if k in fields})
    return body.model_dump(exclude_none=True)


def utc_day(value: datetime | None) -> date | None:
    return value.astimezone(UTC).date() if value is not None else None


def test_a_consignment_is_dated_by_its_manifest_in_batch_and_in_real_time(cargo) -> None:
    parents = manifests(cargo)
    rows = features.lake_records(cargo, "consignment")
    feats = features.compute_batch("consignment", rows, features.load_reference(cargo)).to_pylist()
    by_manifest: dict[str, set] = {}
    for lake_row, scored in zip(rows.to_pylist(), feats, strict=True):
        m = parents[lake_row["record_id"]]
        by_manifest.setdefault(m["manifest_id"], set()).add(scored["record_date"])
        dated = m["arrival_datetime"] or m["departure_datetime"] or m["issue_datetime"]
        expected = utc_day(dated) or utc_day(m["ingested_at"])  # none given: the day SCITI stored it
        # The lake row, its scored features (training, point-in-time history) and windows agree.
        assert lake_row["record_date"] == scored["record_date"] == expected, lake_row["transport_document"]
        single = features.compute_one("consignment", as_sent(lake_row), features.load_reference(cargo))
        # Real time: the dates the request names; a request naming none has no date.
        assert single["record_date"] == utc_day(dated), lake_row["transport_document"]
    assert by_manifest["MAEU-KHH-2611-0042"] == {date(2026, 11, 22)}  # DTM+132, arrival
    assert by_manifest["MAN2611200001"] == by_manifest["AWB2611200002"] == {date(2026, 11, 20)}
    undated = {utc_day(m["ingested_at"]) for m in parents.values() if m["manifest_id"] == UNDATED}
    assert by_manifest[UNDATED] == undated and len(undated) == 1


def hits_of(settings: Settings, rule_id: str) -> tuple[set[str], set[str]]:
    """(record ids batch scoring hit with ``rule_id``, those real time hit, each sent as a request)."""
    assessor = Assessor.load(settings, kinds=("consignment",))
    records = features.lake_records(settings, "consignment")
    batch = {r["record_id"]: r for r in assessor.assess_batch("consignment", records).to_pylist()}
    rows = records.to_pylist()
    real_time = set()
    for row in rows:
        (single,) = assessor.assess("consignment", [as_sent(row)])
        mine, other = single.to_row(), batch[row["record_id"]]
        for name in COMPARED:
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        if rule_id in mine["rule_ids"]:
            real_time.add(row["record_id"])
    return {rid for rid, r in batch.items() if rule_id in r["rule_ids"]}, real_time


def test_a_rule_scoped_to_a_mode_of_transport_hits_its_manifests_consignments(cargo) -> None:
    assessor = Assessor.load(cargo, kinds=("consignment",))
    rows = features.lake_records(cargo, "consignment").to_pylist()
    by_sea = {r["record_id"] for r in rows if r["mode_of_transport"] == SEA}
    assert len(by_sea) == 6 and len(rows) == 8  # two by air
    assert hits_of(cargo, "T-BY-SEA") == (by_sea, by_sea)
    # Real time hits only a request naming that mode: the same record by air, or naming none, is not.
    row = next(r for r in rows if r["record_id"] in by_sea)
    for mode in (AIR, None):
        sent = {k: v for k, v in as_sent(row).items() if k != "mode_of_transport"}
        (answer,) = assessor.assess("consignment", [sent | ({"mode_of_transport": mode} if mode else {})])
        assert "T-BY-SEA" not in answer.to_row()["rule_ids"], mode


def test_a_condition_names_the_manifests_fields_alike_in_batch_and_in_real_time(cargo) -> None:
    rows = features.lake_records(cargo, "consignment").to_pylist()
    parents = manifests(cargo)
    early = date(2026, 11, 21)
    expected = {
        "T-AT-TWKHH": {r for r, m in parents.items() if m["customs_office"] == "TWKHH"},
        "T-SEA-EARLY": {
            r
            for r, m in parents.items()
            if m["mode_of_transport"] == SEA
            and m["arrival_datetime"]
            and utc_day(m["arrival_datetime"]) < early
        },
    }
    assert len(expected["T-AT-TWKHH"]) == 4 and len(expected["T-SEA-EARLY"]) == 2
    for rule_id, hit in expected.items():
        assert hits_of(cargo, rule_id) == (hit, hit), rule_id
    # record_date: batch by the lake row's date; real time only for the requests that name dates.
    batch, real_time = hits_of(cargo, "T-DATED-EARLY")
    dated_early = {r["record_id"] for r in rows if r["record_date"] < early}
    assert batch == dated_early and {parents[r]["manifest_id"] for r in batch} >= {"MAN2611200001"}
    assert real_time == {r for r in dated_early if parents[r]["manifest_id"] != UNDATED}


def test_the_request_schema_says_the_manifests_fields_and_what_dates_a_consignment() -> None:
    props = record_model("consignment").model_json_schema()["properties"]
    for name in ("customs_office", "mode_of_transport", "arrival_location", "departure_location"):
        assert "manifest" in props[name]["description"], name
    for name in ("arrival_datetime", "departure_datetime", "issue_datetime"):
        assert "dates the consignment" in props[name]["description"], name
    assert "record_date" not in props  # computed, never sent
