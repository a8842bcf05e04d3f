"""The single-record answer equals the batch answer for the same record, rules and model."""

from __future__ import annotations

import json

import pyarrow as pa

from sciti.risk import features

COMPARED = (
    "record_id", "subject_ref", "office_code", "score", "rule_score", "model_score", "risk_lane", "lane",
    "sampled", "reasons", "rule_ids", "model_version", "unknown_codes", "rules_version", "reference_snapshot",
    "reason_codes",
)  # fmt: skip


def header_with_items(row: dict) -> dict:
    """A lake subject row as a clearance system sends it: the declaration with its item."""
    return {**row, "record_id": row["declaration_record_id"], "items": [row]}


def test_single_equals_batch_on_kcs(kcs, assessor) -> None:
    recs = features.lake_records(kcs, "declaration")
    sample = recs.slice(0, 600)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", sample, explain="all").to_pylist()
    }
    assert len(batch) == sample.num_rows
    lanes = set()
    hits = counted = 0
    for row in sample.to_pylist():
        (single,) = assessor.assess("declaration", [header_with_items(row)])
        other = batch[single.record_id]
        mine = single.to_row()
        for name in COMPARED:
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        assert json.loads(mine["factors"]) == json.loads(other["factors"])
        assert single.factors, "every model score carries its factors"
        lanes.add(single.lane)
        hits += bool(single.rule_ids)
        coded = [c for c in single.reason_codes if c["code"] == "factor"]
        for f, said in zip(single.factors, coded, strict=True):
            if said.get("inspections"):  # a rate's counts, in its words and its code (decision 0115)
                assert f" in {said['inspections']:,} " in f.text and said["feature"] == f.feature
                counted += 1
    assert hits > 10 and {"green", "red"} <= lanes  # the comparison covered rule hits and several lanes
    assert counted > 100  # and rates with their counts


def test_default_batch_explains_only_flagged_records(kcs, assessor) -> None:
    out = assessor.assess_batch("declaration", features.lake_records(kcs, "declaration").slice(0, 400))
    for row in out.to_pylist():
        flagged = row["lane"] != "green" or row["sampled"]
        assert bool(json.loads(row["factors"])) == flagged, row["subject_ref"]
        assert row["reasons"], "every record says why"


def test_single_equals_batch_for_declarations_with_several_items(kcs, assessor) -> None:
    from decimal import Decimal

    import pyarrow as pa

    rows = features.lake_records(kcs, "declaration").slice(0, 120).to_pylist()
    joined = []
    for row in rows:  # each declaration gets a second, heavy and cheap item that the lane rule sends to red
        second = {**row, "record_id": row["record_id"] + "-2", "item_number": 2, "net_mass_kg": 30000.0}
        second["item_price"] = Decimal("300.0000")
        joined += [row, second]
    table = pa.Table.from_pylist(joined, schema=features.lake_records(kcs, "declaration").schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    assert len(batch) == len(rows)
    for i, row in enumerate(rows):
        header = {
            **row,
            "record_id": row["declaration_record_id"],
            "items": [joined[2 * i], joined[2 * i + 1]],
        }
        (single,) = assessor.assess("declaration", [header])
        other = batch[single.record_id]
        mine = single.to_row()
        for name in (*COMPARED, "items"):
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        assert json.loads(mine["factors"]) == json.loads(other["factors"])
        assert single.lane == "red" and any(r.startswith("Item 2: ") for r in single.reasons)


def test_rates_of_groups_never_inspected_are_said_to_be_assumed(kcs, assessor) -> None:
    """HS 999999 from XQ has no history: its rates are the overall ones, and the words say so
    (not "was found fraudulent in 23% of past inspections"), in real time and in batch alike."""
    row = features.lake_records(kcs, "declaration").slice(0, 1).to_pylist()[0]
    row = {**row, "hs_code": "999999", "country_of_origin": "XQ", "importer_id": "NEVER-SEEN-01"}
    (single,) = assessor.assess("declaration", [header_with_items(row)])
    feats = features.compute_one("declaration", row, assessor.reference)
    fallbacks = assessor.reference.fallbacks
    model = assessor.kind_parts("declaration").model
    texts = {f.feature: f.text for f in model.explain(feats, top=100, reference=assessor.reference)[0]}
    for name in ("hs_origin_risk", "trader_hit_rate", "hs_critical_rate"):
        assert feats[name] == fallbacks[name], name
        if name in texts:  # a feature the model uses
            assert "has no past inspections" in texts[name] or "have no past inspections" in texts[name]
            assert "assumed" in texts[name] and "found" not in texts[name]
    assert any("no past inspections" in t for t in texts.values())
    seen = features.lake_records(kcs, "declaration").slice(0, 1).to_pylist()[0]
    known = {
        f.feature: f.text
        for f in model.explain(features.compute_one("declaration", seen, assessor.reference), top=100,
                               reference=assessor.reference)[0]
    }  # fmt: skip
    assert any(" frauds in " in t and " past inspections" in t for t in known.values())
    batch = assessor.assess_batch("declaration", pa.Table.from_pylist([row]), explain="all").to_pylist()[0]
    assert json.loads(single.to_row()["factors"]) == json.loads(batch["factors"])
