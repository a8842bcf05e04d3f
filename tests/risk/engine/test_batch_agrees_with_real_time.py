"""Batch gives the answer real time gives (decision 0093): tied goods items are named alike,
unknown codes are flagged alike, and a champion that cannot be loaded stops a batch run instead of
letting it score with rules only while the server scores with a model."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from sciti.lake import open_lake, query
from sciti.risk import features
from sciti.risk.engine import Assessor
from sciti.risk.engine.assessor import ModelUnavailable
from sciti.risk.models import promote
from sciti.settings import Settings
from tests.risk.engine.conftest import artefact_path, registered
from tests.risk.engine.test_parity import COMPARED


def test_tied_items_are_named_alike_in_real_time_and_batch(kcs, assessor) -> None:
    """Two items with the same score: both answers name item 1 and list the items 1, 2, whatever
    order the lake's rows or the clearance system's items come in."""
    recs = features.lake_records(kcs, "declaration")
    rows = recs.slice(0, 80).to_pylist()
    lake_order = []
    for row in rows:  # the same goods twice: the same features, so the same score
        first = {**row, "item_number": 1}
        second = {**row, "record_id": row["record_id"] + "-2", "item_number": 2}
        lake_order += [second, first]  # item 2's row comes first, as a lake's rows may
    table = pa.Table.from_pylist(lake_order, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    assert len(batch) == len(rows)
    ties = 0
    for i, row in enumerate(rows):
        second, first = lake_order[2 * i], lake_order[2 * i + 1]
        for sent in ([first, second], [second, first]):
            header = {**row, "record_id": row["declaration_record_id"], "items": sent}
            (single,) = assessor.assess("declaration", [header])
            mine, other = single.to_row(), batch[single.record_id]
            for name in (*COMPARED, "items"):
                assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
            assert json.loads(mine["factors"]) == json.loads(other["factors"])
            listed = [item["item_number"] for item in json.loads(mine["items"])]
            assert listed == [1, 2], listed
            scores = {item["score"] for item in json.loads(mine["items"])}
            assert len(scores) == 1  # a tie indeed
            assert any(r.startswith("Item 1: Model ") for r in single.reasons), single.reasons
            assert not any(r.startswith("Item 2: Model ") for r in single.reasons)
            ties += 1
    assert ties == 2 * len(rows)


def test_unknown_codes_are_flagged_alike_in_real_time_and_batch(kcs, assessor) -> None:
    """A control: HS, country and currency codes are checked in both paths by one list of checks;
    offices, procedures and modes of transport have no code list in SCITI, so neither flags them."""
    recs = features.lake_records(kcs, "declaration")
    row = recs.slice(0, 1).to_pylist()[0]
    row |= {"hs_code": "999999", "country_of_origin": "ZZ", "procedure_code": "ZZZZ",
            "mode_of_transport": "99", "office_code": "NOPE", "invoice_currency": "XXY"}  # fmt: skip
    table = pa.Table.from_pylist([row], schema=recs.schema)
    (out,) = assessor.assess_batch("declaration", table, explain="all").to_pylist()
    (single,) = assessor.assess(
        "declaration", [{**row, "record_id": row["declaration_record_id"], "items": [row]}]
    )
    assert (
        single.unknown_codes == out["unknown_codes"] == ["invoice_currency", "hs_code", "country_of_origin"]
    )
    assert single.reasons == out["reasons"]
    assert "Item 1: Unknown code in hs_code (999999): scored as unknown" in single.reasons


# -- a champion that cannot be loaded ---------------------------------------------------------------
# These tests promote a damaged champion: the KCS instance is the module's own (own_kcs).


@pytest.fixture
def cli(own_kcs, cli_on):
    return cli_on(own_kcs)


def batch_rows(settings: Settings) -> list[dict]:
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists("risk.assessments"):
        return []
    return query(lake, "SELECT model_version, reasons FROM risk.assessments WHERE path = 'batch'").to_pylist()


def test_a_damaged_champion_stops_a_batch_run_unless_rules_only_is_asked(own_kcs, own_model, cli) -> None:
    good = registered(own_kcs, own_model, "declaration-batch-1")
    promote(own_kcs, good["version"], actor="sup")
    serving = Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.0)  # as a running server
    damaged = registered(own_kcs, own_model, "declaration-batch-2")
    path = artefact_path(own_kcs, damaged["artefact_key"])
    path.write_bytes(b"not a model")
    promote(own_kcs, damaged["version"], actor="sup")
    recs = features.lake_records(own_kcs, "declaration").slice(0, 50)

    # The server's fallback: the previous champion keeps serving, in batch as in real time.
    out = serving.assess_batch("declaration", recs)
    assert set(out["model_version"].to_pylist()) == {"declaration-batch-1"}
    assert "still serving declaration-batch-1" in (serving.parts["declaration"].model_error or "")

    # A new process cannot know what a server serves: it stops, saying which model and why.
    fresh = Assessor.load(own_kcs, kinds=("declaration",))
    with pytest.raises(ModelUnavailable) as stopped:
        fresh.assess_batch("declaration", recs)
    assert stopped.value.details["model_version"] == "declaration-batch-2"
    args = ("risk", "score", "--since", "2021-03-01", "--kind", "declaration")
    said = cli(*args, code=1)
    (line,) = [text for text in said.splitlines() if "error:" in text]
    assert "champion model declaration-batch-2 of declaration cannot be loaded" in line
    assert "damaged" in line and "--rules-only" in line
    assert batch_rows(own_kcs) == []  # nothing written, nothing queued

    # Rules only, asked for: every assessment says so.
    (result,) = json.loads(cli(*args, "--rules-only", "--json"))
    assert result["assessments"] > 0 and result["model_version"] is None
    rows = batch_rows(own_kcs)
    assert len(rows) == result["assessments"]
    assert {r["model_version"] for r in rows} == {None}
    assert all(any("--rules-only" in reason for reason in r["reasons"]) for r in rows)
