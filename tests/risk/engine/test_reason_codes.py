"""Every reason line the engine writes has a stable code and values beside it (decision 0107).

Each code makes its line's English sentence; batch and real time give the same codes for the same
record; a rule's own reason is kept in its code as the analyst wrote it; the codes are kept where
the reasons are: ``risk.assessments`` (a table made before them gains the column) and the queue.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select

from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk import features
from sciti.risk.engine import Assessor, KindParts, score_since
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE
from sciti.risk.engine.reasons import CODES, RULES_ONLY, english, model, said_text
from sciti.risk.engine.ruleset import RuleSet
from sciti.risk.lanes import parse_policy
from sciti.risk.models.calibrate import Calibration
from sciti.risk.rules import compile_rule, parse_rule
from tests.risk.engine.test_store import POLICY

# (code, the line the engine wrote for it before codes were kept)
EXAMPLES = [
    ({"code": "rule_hit", "item": 1, "rule": "T-CN-DUTY", "version": 1, "weight": 45.0, "lane": None,
      "text": "Duty 13.0% on goods of origin CN"},
     "Item 1: Duty 13.0% on goods of origin CN (rule T-CN-DUTY v1, +45)"),
    ({"code": "rule_hit", "rule": "PAX-WATCHLIST-01", "version": 3, "weight": 0.0, "lane": "red",
      "text": "Passenger on the watch list"},
     "Passenger on the watch list (rule PAX-WATCHLIST-01 v3, lane red)"),
    ({"code": "rule_hit", "item": 2, "rule": "R", "version": 2, "weight": 12.5, "lane": None, "text": ""},
     "Item 2:  (rule R v2, +12.5)"),
    ({"code": "unknown_code", "item": 1, "field": "hs_code", "value": "999999"},
     "Item 1: Unknown code in hs_code (999999): scored as unknown"),
    ({"code": "unknown_code", "field": "currency", "value": "None"},
     "Unknown code in currency (None): scored as unknown"),
    ({"code": "model", "version": "declaration-test-1", "score": 26},
     "Model declaration-test-1 gives 26 out of 100"),
    ({"code": "model", "item": 4, "version": "m-7", "score": 33, "share": 0.012, "unit": "declarations",
      "period": "2021-01-01 to 2021-03-31", "period_start": "2021-01-01", "period_end": "2021-03-31"},
     "Item 4: Model m-7 gives 33 out of 100: top 1.2% of declarations scored in 2021-01-01 to 2021-03-31"),
    ({"code": "model", "version": "m-7", "score": 3, "share": 0.96, "unit": "declarations",
      "period": "2021-01-01 to 2021-03-31", "period_start": "2021-01-01", "period_end": "2021-03-31"},
     "Model m-7 gives 3 out of 100: 96% of declarations scored in 2021-01-01 to 2021-03-31 score as high "
     "or higher"),
    ({"code": "no_model", "kind": "declaration", "why": None, "cause": None},
     "No model for declaration; scored with rules only"),
    ({"code": "no_model", "kind": "declaration", "why": "artefact checksum mismatch", "cause": "failed"},
     "No model for declaration: artefact checksum mismatch; scored with rules only"),
    ({"code": "no_model", "kind": "passenger", "why": RULES_ONLY, "cause": "rules_only"},
     "No model for passenger: not used in this run (sciti risk score --rules-only); scored with rules only"),
    ({"code": "sample", "share": 0.02}, "Selected by the random compliance sample (2.0% of records)"),
    ({"code": "red_capacity", "office": "CAP1", "day": "2026-11-24", "places": 2, "lane": "yellow"},
     "Red-lane capacity of office CAP1 for 2026-11-24 is used up (2 physical inspections): yellow lane "
     "(document check) instead"),
    ({"code": "red_capacity", "office": None, "day": "2026-11-24", "places": 0, "lane": "blue"},
     "Red-lane capacity of office unknown for 2026-11-24 is used up (0 physical inspections): blue lane "
     "(post-clearance audit) instead"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("said", "line"), EXAMPLES, ids=[f"{s['code']}-{i}" for i, (s, _) in enumerate(EXAMPLES)]
)
def test_a_code_makes_the_english_line(said: dict, line: str) -> None:
    assert english(said) == line
    assert json.loads(said_text(said)) == said


def test_a_factor_line_is_the_models_own_sentence() -> None:
    said = {"code": "factor", "item": 2, "feature": "item_price", "value": 6806.75, "contribution": 0.41}
    assert english(said, "Item price is 6,806.75 (contributes +0.41)") == (
        "Item 2: Item price is 6,806.75 (contributes +0.41)"
    )


def test_a_calibrated_model_line_says_what_the_calibration_says_at_every_score() -> None:
    shares = tuple(0.955**k for k in range(101))  # from every record (score 0) to about 1%
    cal = Calibration(
        tuple(k / 100 for k in range(101)), shares, 5000, "declarations", "2021-01-01 to 2021-03-31"
    )
    for k in range(101):
        said = model("declaration", "m-1", k, None, cal, {})
        assert english(said) == f"Model m-1 gives {k} out of 100: {cal.share_text(k)}", k
        assert (said["period_start"], said["period_end"]) == ("2021-01-01", "2021-03-31")


def assert_lines(row: dict[str, Any]) -> set[str]:
    """Each line of a stored assessment has its code, in order, and the code makes the line; the
    codes seen."""
    codes, lines = row["reason_codes"], row["reasons"]
    assert len(codes) == len(lines), (codes, lines)
    factors = {f["feature"]: f["text"] for f in json.loads(row["factors"])}
    seen = set()
    for code, line in zip(codes, lines, strict=True):
        said = json.loads(code)
        assert said_text(said) == code  # one spelling of a code
        assert said["code"] in CODES
        assert english(said, factors.get(said.get("feature"))) == line, (said, line)
        seen.add(said["code"])
    return seen


def test_every_line_has_its_code_alike_in_batch_and_real_time(kcs, assessor) -> None:
    assessor.policy = dataclasses.replace(assessor.policy, sample_share=0.3, sample_seed="codes")
    recs = features.lake_records(kcs, "declaration")
    rows = recs.slice(0, 240).to_pylist()
    for i, row in enumerate(rows):
        if i % 7 == 0:
            row |= {"hs_code": "999999", "country_of_origin": "ZZ"}  # unknown codes
    extra = [{**r, "record_id": r["record_id"] + "-2", "item_number": 2, "net_mass_kg": 30000.0}
             for r in rows[::4]]  # fmt: skip
    table = pa.Table.from_pylist(rows + extra, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    seen: set[str] = set()
    for row in batch.values():
        seen |= assert_lines(row)
    assert {"rule_hit", "unknown_code", "model", "factor", "sample"} <= seen
    items_of: dict[str, list[dict]] = {}
    for r in rows + extra:
        items_of.setdefault(r["declaration_record_id"], []).append(r)
    for record_id, items in list(items_of.items())[:80]:
        header = {**items[0], "record_id": record_id, "items": items}
        (single,) = assessor.assess("declaration", [header])
        mine = single.to_row()
        assert mine["reason_codes"] == batch[record_id]["reason_codes"], single.subject_ref
        assert mine["reasons"] == batch[record_id]["reasons"]
        assert single.to_dict()["reason_codes"] == [json.loads(c) for c in mine["reason_codes"]]


def test_a_rules_own_words_stay_as_written_in_its_code(kcs, assessor) -> None:
    """Quotes, a backslash, a line break and Chinese in a rule's reason and in the value it names:
    batch (which writes the codes' JSON column-wise) and real time store the same code, and the
    code's text is the reason as the analyst's template made it."""
    rule = parse_rule({"id": "T-SAID", "title": "Said as written", "kind": "declaration",
                       "when": "net_mass_kg > 0", "weight": 5,
                       "reason": '申報人 "{declarant_id}" \\ 淨重 {net_mass_kg} kg'})  # fmt: skip
    scoring = Assessor(
        policy=dataclasses.replace(assessor.policy, sample_share=0.0),
        reference=assessor.reference,
        parts_by_kind={"declaration": KindParts(RuleSet("declaration", [compile_rule(rule, 2)]), None, None)},
    )
    recs = features.lake_records(kcs, "declaration")
    rows = recs.slice(0, 30).to_pylist()
    names = ['D"1', "D\\2", "D\n3", "報關行 4", None, "D\t\x015"]
    for i, row in enumerate(rows):
        row["declarant_id"] = names[i % len(names)]
    extra = [{**rows[0], "record_id": rows[0]["record_id"] + "-2", "item_number": 2}]  # through decide
    table = pa.Table.from_pylist(rows + extra, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in scoring.assess_batch("declaration", table, explain="none").to_pylist()
    }
    for i, row in enumerate(rows):
        items = [row, *extra] if i == 0 else [row]
        (single,) = scoring.assess(
            "declaration", [{**row, "record_id": row["declaration_record_id"], "items": items}]
        )
        mine, other = single.to_row(), batch[single.record_id]
        assert mine["reason_codes"] == other["reason_codes"] and mine["reasons"] == other["reasons"]
        assert_lines(other)
        hit = json.loads(other["reason_codes"][0])
        assert (
            hit["code"] == "rule_hit" and hit["item"] == 1 and hit["rule"] == "T-SAID" and hit["version"] == 2
        )
        assert hit["text"].startswith(f'申報人 "{names[i % len(names)] or "unknown"}" \\ 淨重 ')


# -- where the codes are kept ------------------------------------------------------------------------


def test_codes_are_kept_in_the_lake_and_the_queue_and_an_older_table_gains_them(own_kcs, own_model) -> None:
    """A ``risk.assessments`` made before codes were kept gains the column (its rows: NULL); a run's
    rows and queue items carry their codes, the red-capacity line's among them."""
    lake = open_lake(own_kcs.resolved_catalog_uri, own_kcs.resolved_warehouse)
    older = pa.schema([f for f in ASSESSMENTS_SCHEMA if f.name != "reason_codes"])
    lake.ensure_table(ASSESSMENTS_TABLE, older)
    old_row = {f.name: None for f in older} | {
        "assessment_id": "old-1", "kind": "declaration", "record_id": "R-OLD",
        "reasons": ["Model m gives 1 out of 100"], "assessed_at": datetime(2026, 1, 5, tzinfo=UTC),
    }  # fmt: skip
    lake.append(ASSESSMENTS_TABLE, pa.Table.from_pylist([old_row], schema=older))
    loaded = Assessor.load(own_kcs, kinds=("declaration",))
    capped = parse_policy({**POLICY, "capacity": {"default": 2}, "sample": {"share": 0.05}})
    assessor = Assessor(policy=capped, reference=loaded.reference, parts_by_kind=loaded.parts)
    assessor.parts["declaration"] = KindParts(assessor.parts["declaration"].rules, own_model, None)
    result = score_since(own_kcs, "declaration", since=date(2021, 1, 1), assessor=assessor)
    assert result.over_capacity > 0

    rows = query(lake, f"SELECT * FROM {ASSESSMENTS_TABLE}").to_pylist()  # noqa: S608
    (old,) = [r for r in rows if r["assessment_id"] == "old-1"]
    assert old["reason_codes"] is None and old["reasons"] == ["Model m gives 1 out of 100"]
    seen: set[str] = set()
    for r in rows:
        if r["assessment_id"] != "old-1":
            seen |= assert_lines(r)
    assert {"rule_hit", "model", "factor", "sample", "red_capacity"} <= seen
    by_id = {r["assessment_id"]: r for r in rows}
    with session_scope(own_kcs.resolved_ops_db_url) as session:
        items = session.scalars(select(RiskQueueItem)).all()
        assert items
        for item in items:  # the queue's codes are the lake's, as one JSON array
            assert item.reason_codes == "[" + ",".join(by_id[item.assessment_id]["reason_codes"]) + "]"
            assert len(json.loads(item.reason_codes)) == len(item.reasons)
        assert any('"code":"red_capacity"' in item.reason_codes for item in items)
