"""The assessor: score parts shown, rules reloaded without restart, rules-only service without a model."""

from __future__ import annotations

import pytest

from sciti.risk.engine import KindParts, combine
from sciti.risk.engine.assessor import Assessor as _Assessor
from tests.risk.engine.conftest import approve
from tests.risk.engine.test_store import heavy_cheap


@pytest.mark.parametrize(
    ("rule", "model", "score"),
    [
        (0, None, 0.0),
        (45, None, 45.0),
        (250, None, 100.0),
        (45, 80.25, 80.25),
        (90, 12.0, 90.0),
        (0, 3.5, 3.5),
    ],
)
def test_score_is_the_higher_of_rules_and_model(rule, model, score) -> None:
    assert combine(rule, model) == score


def test_answer_shows_every_part(assessor) -> None:
    (record,) = heavy_cheap("PARTS")
    record["items"][0] |= {"country_of_origin": "CN", "duty_rate": 13.0}  # the weight rule hits too
    (a,) = assessor.assess("declaration", [record])
    assert a.rule_score == 45.0 and a.model_score is not None
    assert a.score == combine(a.rule_score, a.model_score)
    assert a.lane == "red" and set(a.rule_ids) == {"T-CN-DUTY", "T-HEAVY-CHEAP"}
    assert any("Duty 13.0% on goods of origin CN (rule T-CN-DUTY v1, +45)" in r for r in a.reasons)
    assert any(r.startswith("Model declaration-test-1 gives") for r in a.reasons)
    assert [f.text for f in a.factors] == [r for r in a.reasons if "(contributes" in r]


def test_several_items_roll_up_to_the_highest(assessor) -> None:
    (record,) = heavy_cheap("ITEMS")
    calm = {**record["items"][0], "item_number": 2, "net_mass_kg": 10.0, "item_price": 5000.0}
    record["items"] = [calm, {**record["items"][0], "item_number": 3}]
    (a,) = assessor.assess("declaration", [record])
    assert [i["item_number"] for i in a.items] == [2, 3]
    assert a.lane == "red" and a.score == max(i["score"] for i in a.items)
    assert any(r.startswith("Item 3: ") and "T-HEAVY-CHEAP" in r for r in a.reasons)


def test_rules_reload_without_restart(kcs, assessor) -> None:
    assessor.reload_seconds = 0.0
    (record,) = heavy_cheap("RELOAD")
    record["items"][0]["hs_code"] = "930100"  # weapons
    before = assessor.assess("declaration", [record])[0]
    assert "T-WEAPONS" not in before.rule_ids
    approve(kcs, {"id": "T-WEAPONS", "title": "Arms", "kind": "declaration", "when": "hs_chapter = '93'",
                  "weight": 60, "reason": "Arms and ammunition (HS {hs6})"})  # fmt: skip
    after = assessor.assess("declaration", [record])[0]
    assert "T-WEAPONS" in after.rule_ids and after.rules_version != before.rules_version
    assert any("Arms and ammunition (HS 930100)" in r for r in after.reasons)


def test_without_a_model_the_engine_serves_rules_only_and_says_so(kcs, assessor) -> None:
    broken = KindParts(assessor.parts["declaration"].rules, None, "artefact checksum mismatch")
    rules_only = _Assessor(
        policy=assessor.policy, reference=assessor.reference, parts_by_kind={"declaration": broken}
    )
    (a,) = rules_only.assess("declaration", heavy_cheap("NOMODEL"))
    assert a.model_version is None and a.model_score is None and a.factors == []
    assert a.lane == "red" and a.rule_ids == ["T-HEAVY-CHEAP"]  # the rules still decide
    assert "No model for declaration: artefact checksum mismatch; scored with rules only" in a.reasons
