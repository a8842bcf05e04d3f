"""The engine takes the registry's champion; a champion whose artefact is damaged leaves rules only."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY

from sciti.lake import ObjectStore
from sciti.risk import models
from sciti.risk.engine import Assessor
from tests.risk.engine.test_store import heavy_cheap

SMALL = {"num_boost_round": 20, "num_leaves": 7, "num_threads": 1}


def test_champion_scores_then_a_damaged_artefact_leaves_rules_only(kcs) -> None:
    s = kcs  # other tests give their assessor the test model explicitly, so a champion here is harmless
    entry = models.train(s, "declaration", params=SMALL, actor="alice", promote_to="champion")
    (a,) = Assessor.load(s, kinds=("declaration",)).assess("declaration", heavy_cheap("REG"))
    assert a.model_version == entry["version"] and a.factors and a.model_score is not None
    assert REGISTRY.get_sample_value("sciti_risk_model_unavailable", {"kind": "declaration"}) == 0.0

    path = ObjectStore(s.resolved_object_store).path(entry["artefact_key"])
    os.chmod(path, 0o644)
    path.write_bytes(b"not a model")
    damaged = Assessor.load(s, kinds=("declaration",))
    assert REGISTRY.get_sample_value("sciti_risk_model_unavailable", {"kind": "declaration"}) == 1.0
    (b,) = damaged.assess("declaration", heavy_cheap("REG"))
    assert b.model_version is None and b.factors == [] and b.lane == "red"  # the rules still decide
    assert any(
        r.startswith(f"No model for declaration: model {entry['version']} cannot be loaded")
        for r in b.reasons
    )
    # Its code carries the loader's error code and the version, so a page says it in Chinese (0118).
    (failed,) = [c for c in b.reason_codes if c["code"] == "no_model"]
    assert failed["cause"] == "failed" and failed["error"] == "model_load_error"
    assert failed["champion"] == entry["version"] and failed["why"].startswith(f"model {entry['version']}")
