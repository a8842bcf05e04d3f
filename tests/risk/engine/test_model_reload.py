"""A running engine picks up a promoted champion without a restart (real registry, real models).

A promotion is seen at the next rules check; a new champion whose artefact is broken leaves the
previous one serving, with the reason shown, until it loads; a retired champion leaves rules only.
The tests promote and retire champions: the KCS instance is the module's own (``own_kcs``).
"""

from __future__ import annotations

import asyncio
import threading
import time

from prometheus_client import REGISTRY

from sciti.risk.engine import Assessor, RiskService
from sciti.risk.models import promote
from tests.api.conftest import bearer, make_client, token_factory
from tests.risk.engine.conftest import artefact_path, registered
from tests.risk.engine.test_store import heavy_cheap


def reloads() -> float:
    return REGISTRY.get_sample_value("sciti_risk_model_reloads_total", {"kind": "declaration"}) or 0.0


def alert() -> float | None:
    return REGISTRY.get_sample_value("sciti_risk_model_unavailable", {"kind": "declaration"})


def assess_one(assessor: Assessor):
    (a,) = assessor.assess("declaration", heavy_cheap("RELOAD"))
    return a


def test_promotion_broken_artefact_and_retirement_without_restart(own_kcs, own_model) -> None:
    first = registered(own_kcs, own_model, "declaration-reload-1")
    promote(own_kcs, first["version"], actor="sup")
    assessor = Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.3)
    assert assess_one(assessor).model_version == "declaration-reload-1"

    second = registered(own_kcs, own_model, "declaration-reload-2")
    promote(own_kcs, second["version"], actor="sup")
    before = reloads()
    time.sleep(0.35)  # the next check
    a = assess_one(assessor)
    assert a.model_version == "declaration-reload-2" and a.model_score is not None
    assert any(r.startswith("Model declaration-reload-2 gives") for r in a.reasons)
    assert a.rules_version == assessor.parts["declaration"].rules.stamp
    assert reloads() == before + 1 and alert() == 0

    # A new champion whose artefact is damaged: the previous one keeps serving, and says why.
    third = registered(own_kcs, own_model, "declaration-reload-3")
    path = artefact_path(own_kcs, third["artefact_key"])
    good = path.read_bytes()
    path.write_bytes(b"not a model")
    promote(own_kcs, third["version"], actor="sup")
    assessor.reload_seconds = 0.0
    a = assess_one(assessor)
    assert a.model_version == "declaration-reload-2" and a.model_score is not None
    p = assessor.parts["declaration"]
    assert p.model_error and "declaration-reload-3" in p.model_error and "still serving" in p.model_error
    assert alert() == 1 and reloads() == before + 1
    assert assess_one(assessor).model_version == "declaration-reload-2"  # tried again, still broken

    path.write_bytes(good)  # repaired: loaded at the next check
    assert assess_one(assessor).model_version == "declaration-reload-3"
    assert assessor.parts["declaration"].model_error is None and alert() == 0
    assert reloads() == before + 2

    # Retired without a successor: rules only, as at start-up, and no alert.
    promote(own_kcs, third["version"], "retired", actor="sup")
    a = assess_one(assessor)
    assert a.model_version is None and a.model_score is None and a.factors == []
    assert a.lane == "red" and a.rule_ids == ["T-HEAVY-CHEAP"]
    assert "No model for declaration; scored with rules only" in a.reasons
    assert alert() == 0 and reloads() == before + 3


def test_a_broken_first_champion_is_retried_until_it_loads(own_kcs, own_model) -> None:
    entry = registered(own_kcs, own_model, "declaration-reload-4")
    path = artefact_path(own_kcs, entry["artefact_key"])
    good = path.read_bytes()
    path.write_bytes(b"damaged")
    promote(own_kcs, entry["version"], actor="sup")
    try:
        assessor = Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.0)
        a = assess_one(assessor)
        assert a.model_version is None and alert() == 1
        assert any("declaration-reload-4" in r and "rules only" in r for r in a.reasons)
        path.write_bytes(good)
        assert assess_one(assessor).model_version == "declaration-reload-4" and alert() == 0
    finally:
        path.write_bytes(good)
        promote(own_kcs, entry["version"], "retired", actor="sup")


def test_the_api_shows_a_promotion_without_a_restart(own_kcs, own_model) -> None:
    entry = registered(own_kcs, own_model, "declaration-reload-5")
    client = make_client(own_kcs)
    svc = RiskService(own_kcs, Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.0))
    client.app.state.risk_service = svc
    tokens = token_factory(own_kcs)
    viewer, supervisor = bearer(tokens("viewer")), bearer(tokens("supervisor"))
    clearance = bearer(tokens("clearance_system"))
    try:
        status = client.get("/api/v1/risk/status", headers=viewer).json()
        assert status["kinds"]["declaration"]["model_version"] is None

        promoted = client.post(
            f"/api/v1/models/{entry['version']}/promote",
            json={"role": "champion", "reason": "walkthrough"},
            headers=supervisor,
        )
        assert promoted.status_code == 200, promoted.text
        (record,) = heavy_cheap("APIR")
        r = client.post(
            "/api/v1/risk/assess", json={"kind": "declaration", "record": record}, headers=clearance
        )
        assert r.status_code == 200, r.text
        assert r.json()["assessments"][0]["model_version"] == "declaration-reload-5"
        kind = client.get("/api/v1/risk/status", headers=viewer).json()["kinds"]["declaration"]
        assert kind["model_version"] == "declaration-reload-5" and kind["model_alert"] is None
    finally:
        svc.stop()
        promote(own_kcs, entry["version"], "retired", actor="sup")


def test_the_server_checks_for_new_rules_and_models_off_the_event_loop(own_kcs) -> None:
    """Loading a promoted model takes a while: the real-time path must never do it on the loop."""
    assessor = Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.0)
    checked_on: list[str] = []
    check = assessor.refresh_rules

    def spy(**kw):
        checked_on.append(threading.current_thread().name)
        return check(**kw)

    assessor.refresh_rules = spy  # type: ignore[method-assign]
    svc = RiskService(own_kcs, assessor)
    try:

        async def answers() -> None:
            for _ in range(3):
                await svc.assess_async("declaration", heavy_cheap("LOOP"))

        asyncio.run(answers())
    finally:
        svc.stop()
    assert len(checked_on) == 3 and threading.main_thread().name not in checked_on, checked_on
